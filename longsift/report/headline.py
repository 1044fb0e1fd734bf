"""The headline: a run's results in two small tables, the same numbers in the HTML report and in the terminal.

`headline(data)` computes the rows once; `headline_html` and `headline_rich` only lay them out, so the page and
`longsift run`'s closing table cannot disagree. Every cell holds a number or says in words why there is none;
results on fewer than `SMALL_SAMPLE` prompts carry a warning. The paper's published numbers
(`reference.yaml`) are rows of the pairwise table, labelled with their source.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, TypeGuard

import yaml

from longsift.report.collect import Comparison, RunData
from longsift.report.names import judge_label, model_label

SMALL_SAMPLE = 30
Z95 = 1.959963984540054
OUTCOMES = ("win", "tie", "lose")
PRIMARY_POLICY = "paper"  # the paper's Figure 2 counting


@dataclass(frozen=True)
class PairwiseRow:
    source: str  # "this run" or the reference's citation
    comparison: str
    judge: str
    policy: str
    cells: tuple[str, str, str]  # win, tie, lose: "60.0% (23.1–88.2)" or why there is no value
    n: str
    note: str


@dataclass(frozen=True)
class BenchmarkRow:
    benchmark: str
    model: str
    score: str
    interval: str
    n: str
    note: str


@dataclass(frozen=True)
class Headline:
    banner: list[str]
    pairwise: list[PairwiseRow]
    benchmarks: list[BenchmarkRow]

    @property
    def empty(self) -> bool:
        return not (self.pairwise or self.benchmarks)


def wilson(successes: int, n: int) -> tuple[float, float]:
    """95% Wilson score interval of a proportion, in percent (sound at small n, unlike the normal one)."""
    p = successes / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / (1 + Z95**2 / n)
    return 100.0 * max(0.0, centre - half), 100.0 * min(1.0, centre + half)


def small_sample(n: int) -> str:
    return f"small sample: n={n} < {SMALL_SAMPLE}" if n < SMALL_SAMPLE else ""


@cache
def reference() -> dict[str, Any]:
    text = resources.files("longsift.report").joinpath("reference.yaml").read_text(encoding="utf-8")
    loaded = yaml.safe_load(text)
    assert isinstance(loaded, dict)
    return loaded


def headline(data: RunData, banner: list[str] | None = None, placements: Mapping[str, str] | None = None) -> Headline:
    """`placements`: model -> its place on the AlpacaEval leaderboard, in words."""
    rows = [row for comparison in data.comparisons for row in _pairwise(comparison)]
    if rows:
        rows += _reference_rows()
    benchmarks = _alpacaeval(data, placements or {}) + _mtbench(data) + _openllm(data)
    return Headline(list(banner or []), rows, benchmarks)


def _pairwise(comparison: Comparison) -> list[PairwiseRow]:
    rows = []
    policies = [p for p in (PRIMARY_POLICY, "strict") if p in comparison.tables]
    for policy in policies or list(comparison.tables):
        total = comparison.tables[policy].get("all") or {}
        n, failed = int(total.get("n") or 0), int(total.get("failed") or 0)
        judged = int(total.get("judged", n - failed))
        cells: tuple[str, str, str]
        if judged:
            win, tie, lose = (_share(int(total.get(k) or 0), judged) for k in OUTCOMES)
            cells = (win, tie, lose)
        elif n:
            cells = (f"no verdict: all {n} failed", "none judged", "none judged")
        else:
            cells = ("no prompts", "no prompts", "no prompts")
        notes = [small_sample(judged)] if judged else []
        if failed:
            notes.append(f"{failed} of {n} prompts failed, left out (judgments: {_failure_kinds(comparison)})")
        rows.append(PairwiseRow("this run", f"{comparison.model_a} vs {comparison.model_b}",
                                judge_label(comparison.judge) if comparison.judge else "not recorded", policy,
                                cells, f"{judged} judged of {n}", "; ".join(x for x in notes if x)))  # fmt: skip
    return rows


def _share(count: int, judged: int) -> str:
    if not 0 <= count <= judged:  # a hand-edited or damaged summary.json
        return f"{count} of {judged} judged: inconsistent counts"
    low, high = wilson(count, judged)
    return f"{100.0 * count / judged:.1f}% ({low:.1f}–{high:.1f})"


def _failure_kinds(comparison: Comparison) -> str:
    kinds: Counter[str] = Counter()
    for orders in comparison.judgments.values():
        for judgment in orders.values():
            if judgment.status != "ok" or judgment.verdict is None:
                kinds[(judgment.error or "unreadable reply").split(":")[0].split()[0]] += 1
    if not kinds:
        return "reasons not recorded in summary.json"
    return ", ".join(f"{count} {kind}" for kind, count in kinds.most_common())


def _reference_rows() -> list[PairwiseRow]:
    ref = reference()
    return [
        PairwiseRow(
            ref["source"],
            f"{row['model_a']} vs {row['model_b']}",
            row["judge"],
            PRIMARY_POLICY,
            (f"{row['win']:.1f}%", f"{row['tie']:.1f}%", f"{row['lose']:.1f}%"),
            f"{ref['prompts']:,} prompts",
            "published result, for reference",
        )  # fmt: skip
        for row in ref["rows"]
    ]


def _alpacaeval(data: RunData, placements: Mapping[str, str]) -> list[BenchmarkRow]:
    rows = []
    for model, result in sorted(data.alpacaeval.items()):
        n = _int(result.get("n_total"))
        win, se = result.get("win_rate"), result.get("standard_error")
        interval = f"{win - Z95 * se:.1f}–{win + Z95 * se:.1f} (±1.96 SE)" if _num(win) and _num(se) else "no SE given"
        score = f"{win:.2f}%" if _num(win) else "no win rate in the result"
        notes = [small_sample(n)] if n is not None else ["n not recorded"]
        if placement := placements.get(model):
            notes.insert(0, placement)
        rows.append(BenchmarkRow("AlpacaEval 2.0 win rate", model, score, interval, _count(n), _join(notes)))
        lc, lc_se = result.get("length_controlled_winrate"), result.get("lc_standard_error")
        lc_interval = f"{lc - Z95 * lc_se:.1f}–{lc + Z95 * lc_se:.1f}" if _num(lc) and _num(lc_se) else "no SE given"
        rows.append(BenchmarkRow(
            "AlpacaEval 2.0 LC win rate", model, f"{lc:.2f}%" if _num(lc) else "not computed",
            lc_interval if _num(lc) else "needs the instruction-difficulty table",
            _count(n), "" if _num(lc) else "rerun `alpacaeval score` with --difficulty df_gamed.csv",
        ))  # fmt: skip
    return rows


def _mtbench(data: RunData) -> list[BenchmarkRow]:
    rows = []
    for model, result in sorted(data.mtbench.items()):
        judged, failed = _int(result.get("n_judged")), _int(result.get("n_failed")) or 0
        overall = result.get("overall")
        turns = [f"turn {t} {result[f'turn_{t}']:.2f}" for t in (1, 2) if _num(result.get(f"turn_{t}"))]
        score = f"{overall:.2f} / 10" if _num(overall) else f"no score: {failed} gradings failed"
        notes = [", ".join(turns), small_sample(judged) if judged is not None else "n not recorded"]
        if failed:
            notes.append(f"{failed} gradings failed")
        judge = result.get("judge")
        rows.append(BenchmarkRow("MT-Bench" + (f" (judge {model_label(str(judge))})" if judge else ""), model, score,
                                 "no interval: one grading per answer", _count(judged), _join(notes)))  # fmt: skip
    return rows


def _openllm(data: RunData) -> list[BenchmarkRow]:
    rows = []
    for model, summary in sorted(data.openllm.items()):
        average = summary.get("average")
        tasks = ", ".join(f"{t} {s:.1f}" for t, s in (summary.get("scores") or {}).items() if _num(s))
        rows.append(BenchmarkRow(
            "Open LLM average", model, f"{average:.2f}%" if _num(average) else "no average: no task of it ran",
            "no interval: lm-eval's stderr per task only", _count(summary.get("_n")),
            _join([tasks, *summary.get("notes", [])]),
        ))  # fmt: skip
    return rows


def _num(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _int(value: Any) -> int | None:
    return int(value) if _num(value) else None


def _count(n: Any) -> str:
    return f"{n:,}" if isinstance(n, int) else "not recorded"


def _join(notes: list[str]) -> str:
    return "; ".join(n for n in notes if n)


PAIRWISE_HEADER = ("Source", "Comparison", "Judge", "Policy", "Win (95% CI)", "Tie (95% CI)", "Lose (95% CI)", "n",
                   "Note")  # fmt: skip
BENCHMARK_HEADER = ("Benchmark", "Model", "Score", "95% CI", "n", "Note")


def table_rows(head: Headline) -> tuple[list[list[str]], list[list[str]]]:
    pairwise = [[r.source, r.comparison, r.judge, r.policy, *r.cells, r.n, r.note] for r in head.pairwise]
    benchmarks = [[r.benchmark, r.model, r.score, r.interval, r.n, r.note] for r in head.benchmarks]
    return pairwise, benchmarks


def headline_rich(head: Headline) -> list[Any]:
    """Rich renderables for the terminal: the banner, the two tables (the HTML headline's rows and numbers, the
    source folded into the comparison) and their notes below each, so the tables fit a terminal."""
    from rich.table import Table
    from rich.text import Text

    out: list[Any] = [Text("demo run: " + "; ".join(head.banner), style="bold yellow")] if head.banner else []
    pairwise = [([r.comparison if r.source == "this run" else f"paper: {r.comparison}", r.judge, r.policy,
                  *r.cells, r.n], r.note, r.source != "this run") for r in head.pairwise]  # fmt: skip
    benchmarks = [([r.benchmark, r.model, r.score, r.interval, r.n], r.note, False) for r in head.benchmarks]
    tables = (("Pairwise judging", ("Comparison", "Judge", "Policy", "Win (95% CI)", "Tie", "Lose", "n"), pairwise),
              ("Benchmarks", BENCHMARK_HEADER[:-1], benchmarks))  # fmt: skip
    for title, header, rows in tables:
        if not rows:
            continue
        table = Table(title=title, title_justify="left")
        for column in header:
            table.add_column(column, overflow="fold")
        notes: list[str] = []
        for cells, note, reference in rows:
            mark = ""
            if note and not reference:
                notes.append(note)
                mark = f" [{len(notes)}]"
            table.add_row(*cells[:-1], cells[-1] + mark, style="dim" if reference else None)
        out.append(table)
        out += [Text(f"  [{i}] {note}", style="yellow" if "small sample" in note else "") for i, note in
                enumerate(notes, 1)]  # fmt: skip
    return out


def as_mapping(head: Headline) -> Mapping[str, Any]:
    pairwise, benchmarks = table_rows(head)
    return {"banner": head.banner, "pairwise": [dict(zip(PAIRWISE_HEADER, r, strict=True)) for r in pairwise],
            "benchmarks": [dict(zip(BENCHMARK_HEADER, r, strict=True)) for r in benchmarks]}  # fmt: skip
