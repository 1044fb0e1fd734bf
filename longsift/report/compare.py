"""`longsift report RUN_A RUN_B ... -o compare.html`: several runs on one page.

The headline rows of every run side by side (one column per run, a row per comparison or benchmark), each run's
own headline tables, the options that differ between the runs' stages (from their stage manifests), and each
run's stage timeline (wall time, LLM calls, tokens and cost per stage). The page is built like a run's report:
the same CSS, script and Content-Security-Policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from longsift.report import sections
from longsift.report.collect import collect
from longsift.report.headline import Headline
from longsift.report.markup import table, tag
from longsift.report.names import stage_manifests
from longsift.report.timeline import timeline_table


def _names(runs: list[Path]) -> list[str]:
    """Each run by its folder name, made unique with its parent's name where two share one."""
    names = [run.resolve().name for run in runs]
    return [
        f"{run.resolve().parent.name}/{name}" if names.count(name) > 1 else name
        for run, name in zip(runs, names, strict=True)
    ]


def side_by_side(names: list[str], heads: list[Headline]) -> list[Any]:
    pairwise: dict[tuple[str, str, str], dict[str, str]] = {}
    benchmarks: dict[tuple[str, str], dict[str, str]] = {}
    for name, head in zip(names, heads, strict=True):
        for row in head.pairwise:
            if row.source == "this run":
                cell = f"win {row.cells[0]} · tie {row.cells[1]} · lose {row.cells[2]} · {row.n}"
                pairwise.setdefault((row.comparison, row.judge, row.policy), {})[name] = cell
        for bench in head.benchmarks:
            benchmarks.setdefault((bench.benchmark, bench.model), {})[name] = f"{bench.score} (n={bench.n})"
    body: list[Any] = []
    if pairwise:
        rows = [[*key, *(cells.get(n, "not in this run") for n in names)] for key, cells in pairwise.items()]
        body += [tag("h3", "Pairwise judging"), tag("div", table(["Comparison", "Judge", "Policy", *names], rows,
                                                                 id="compare-pairwise"), class_="scroll")]  # fmt: skip
    if benchmarks:
        rows = [[*key, *(cells.get(n, "not in this run") for n in names)] for key, cells in benchmarks.items()]
        body += [tag("h3", "Benchmarks"), tag("div", table(["Benchmark", "Model", *names], rows,
                                                           id="compare-benchmarks"), class_="scroll")]  # fmt: skip
    if not body:
        body.append(tag("p", "None of these runs has results yet (judgments, AlpacaEval, MT-Bench, Open LLM).",
                        class_="absent"))  # fmt: skip
    return body


def _flat(prefix: str, value: Any) -> dict[str, str]:
    if isinstance(value, Mapping) and value:
        out: dict[str, str] = {}
        for key, inner in value.items():
            out.update(_flat(f"{prefix}.{key}", inner))
        return out
    return {prefix: orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()}


def stage_options(run: Path) -> dict[str, str]:
    """`stage.option` -> its value as JSON, over every stage manifest of the run (the stage kind as `stage.uses`)."""
    options: dict[str, str] = {}
    for stage, record in stage_manifests(run).items():
        options[f"{stage}.uses"] = record.command
        options.update(_flat(stage, record.options))
    return options


def config_diff(names: list[str], runs: list[Path]) -> list[Any]:
    per_run = [stage_options(run) for run in runs]
    keys = sorted({k for options in per_run for k in options})
    differing = [k for k in keys if len({options.get(k) for options in per_run}) > 1]
    lead = f"{len(differing)} of {len(keys)} stage options differ between the runs (from RUN/.stages/*/manifest.json)."
    if not keys:
        return [tag("p", "No stage manifests in these runs: they were not made by `longsift run`.", class_="absent")]
    rows = [[key, *(options.get(key, "(no such stage option)") for options in per_run)] for key in differing]
    body: list[Any] = [tag("p", lead, class_="lead")]
    if rows:
        body.append(tag("div", table(["Stage option", *names], rows, class_="diffcfg", id="config-diff"),
                        class_="scroll"))  # fmt: skip
    else:
        body.append(tag("p", "The runs' stages ran with the same options.", id="config-diff"))
    return body


def compare_body(runs: list[Path]) -> tuple[list[Any], list[str]]:
    from longsift.report.render import run_headline

    names = _names(runs)
    datas = [collect(run) for run in runs]
    heads = [run_headline(data) for data in datas]
    body: list[Any] = [
        sections.section("side-by-side", "Results side by side", side_by_side(names, heads)),
        sections.section("config", "Configuration differences", config_diff(names, runs)),
        sections.section("timeline", "Stage timeline", [x for name, run in zip(names, runs, strict=True)
                                                        for x in (tag("h3", name), timeline_table(run))]),
        sections.section("headlines", "Each run's headline", [tag("div", [
            tag("div", [tag("h3", name), sections.headline_section(head)], class_="run") for name, head in
            zip(names, heads, strict=True)], class_="compare")]),
    ]  # fmt: skip
    notes = [f"{name}: {note}" for name, data in zip(names, datas, strict=True) for note in data.notes]
    return body, notes
