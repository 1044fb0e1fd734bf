"""The report's sections, each a function of RunData (and the analysis) returning escaped HTML.

A section with no data says so, and which command or file would fill it.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from longsift import layout
from longsift.errors import DataError
from longsift.report import plots
from longsift.report.collect import Comparison, RunData
from longsift.report.headline import BENCHMARK_HEADER, PAIRWISE_HEADER, Headline, table_rows
from longsift.report.leaderboard import leaderboard
from longsift.report.markup import Html, absent, image, join, number, pct, pre_json, table, tag
from longsift.report.names import judge_label
from longsift.report.refinement import refinement_block
from longsift.report.selection_compare import run_sections as compare_sections
from longsift.verdicts import POLICIES

LC_MISSING = "n/a: LC needs the instruction-difficulty table"
PAPER_FIG_1B = ("The paper's Fig. 1b (NLTK word tokens, full Alpaca-52k): Alpaca-52k 51, its longest-1k 257, "
                "LIMA-1k 531 tokens on average.")  # fmt: skip


def section(anchor: str, title: str, body: list[Any]) -> Html:
    return tag("section", [tag("h2", title), *body], id=anchor)


def outcome_cell(row: Mapping[str, Any], key: str) -> Html:
    judged = row.get("judged", (row.get("n") or 0) - (row.get("failed") or 0))
    share = row.get(f"{key}_pct")
    if share is None and judged:
        share = 100.0 * (row.get(key) or 0) / judged
    return join([pct(share), tag("span", f" ({row.get(key, 0)})", class_="count")])


def outcome_table(comparison: Comparison, index: int) -> Html:
    policies = [p for p in POLICIES if p in comparison.tables]
    sets = list(comparison.tables[policies[0]]) if policies else []
    top = [tag("th", h, rowspan="2") for h in ("Test set", "Prompts", "Judged", "Failed")]
    top += [tag("th", f"{p} policy", colspan="4", class_="policy") for p in policies]
    sub = [tag("th", h) for _ in policies for h in ("Win", "Tie", "Lose", "Winning score")]
    rows = []
    for eval_set in sets:
        first = comparison.tables[policies[0]][eval_set]
        judged = first.get("judged", first.get("n", 0) - first.get("failed", 0))
        cells = [tag("th", eval_set), tag("td", number(first.get("n"))), tag("td", number(judged))]
        cells.append(tag("td", number(first.get("failed")), class_="failed" if first.get("failed") else None))
        for policy in policies:
            row = comparison.tables[policy].get(eval_set) or {}
            cells += [tag("td", outcome_cell(row, k), class_=k) for k in ("win", "tie", "lose")]
            cells.append(tag("td", number(row.get("winning_score"), 3)))
        rows.append(tag("tr", cells, data_set=eval_set, class_="total" if eval_set == "all" else None))
    head = tag("thead", [tag("tr", top), tag("tr", sub)])
    return tag("table", [head, tag("tbody", rows)], class_="outcomes", data_comparison=str(index))


def judging(data: RunData) -> Html:
    if not data.comparisons:
        return section("judging", "Pairwise judging", [absent("no pairwise judgments.", "longsift judge pairwise "
                       "A.jsonl B.jsonl -o RUN_DIR/judge/A__vs__B")])  # fmt: skip
    body: list[Any] = [tag("p", [
        "Outcomes are from model A's side. ", tag("em", "paper"), ": +1/−1 per order, win if the sum ≥ 1; ",
        tag("em", "strict"), " (FastChat): a win only when both orders agree. Percentages are of judged prompts; "
        "failed judgments are counted apart, never as ties. Winning score = 1 + (wins − losses) / judged.",
    ], class_="lead")]  # fmt: skip
    for index, comparison in enumerate(data.comparisons):
        facts = [f"source: {comparison.table_source}"]
        if comparison.flip_rate is not None:
            facts.append(f"position flips: {pct(comparison.flip_rate)} of judged prompts")
        body += [
            tag("h3", comparison.title), tag("p", " · ".join(facts), class_="facts"),
            tag("div", outcome_table(comparison, index), class_="scroll"),
            image(plots.outcome_bars(comparison.tables), f"win/tie/lose per test set, {comparison.title}"),
        ]  # fmt: skip
    body.append(readings(data))
    return section("judging", "Pairwise judging", body)


# --- the paper's reading of the same replies beside the strict one (summary.json `readings`) ------------------

READING_COUNTS = ("win", "tie", "lose", "failed")


def readings(data: RunData) -> Html:
    """Per judge folder whose summary.json holds both readings: the paper policy's counts under each, and the
    difference (paper reading minus strict) per test set."""
    blocks = []
    for folder in layout.judge_dirs(data.run_dir):
        try:
            summary = layout.read_json(folder / layout.SUMMARY) if (folder / layout.SUMMARY).is_file() else None
        except DataError:
            continue  # collect() already notes an unreadable summary
        found = summary.get("readings") if isinstance(summary, dict) else None
        if isinstance(summary, dict) and isinstance(found, dict) and {"paper", "strict"} <= set(found):
            blocks.append(readings_table(folder.name, summary, found))
    if not blocks:
        return Html("")
    lead = tag("p", [
        "The same judge replies read two ways, counted by the paper policy. ", tag("em", "strict"), ": longsift's "
        "reader, an unreadable reply is a failure. ", tag("em", "paper"), ": the paper's parse_score and "
        "result_graph.py (int() of both scores; an unreadable reply is [-1, -1], a tie for that order). "
        "Δ = paper − strict, in prompts and in points of all prompts.",
    ], class_="lead")  # fmt: skip
    return tag("div", [tag("h3", "Paper reading vs strict reading"), lead, *blocks], id="readings")


def readings_table(folder: str, summary: Mapping[str, Any], found: Mapping[str, Any]) -> Html:
    strict, paper = found["strict"].get("paper") or {}, found["paper"].get("paper") or {}
    header = ["Test set", "Prompts", *(f"strict {k}" for k in READING_COUNTS), *(f"paper {k}" for k in READING_COUNTS),
              *(f"Δ {k}" for k in READING_COUNTS[:3])]  # fmt: skip
    rows = []
    for eval_set in strict:
        s_row, p_row = strict[eval_set], paper.get(eval_set) or {}
        n = s_row.get("n") or 0
        deltas = [_delta(p_row.get(k, 0) - s_row.get(k, 0), n) for k in READING_COUNTS[:3]]
        rows.append([eval_set, number(n), *(number(s_row.get(k)) for k in READING_COUNTS),
                     *(number(p_row.get(k)) for k in READING_COUNTS), *deltas])  # fmt: skip
    facts = f"judge/{folder} · its tables above use the {summary.get('parse', 'strict')} reading"
    if summary.get("compat"):
        facts += f" · compat: {summary['compat']} (every quirk of the paper's scripts)"
    return join([tag("p", facts, class_="facts"),
                 tag("div", table(header, rows, class_="readings", data_folder=folder), class_="scroll")])  # fmt: skip


def _delta(count: int, n: int) -> str:
    points = f" ({100.0 * count / n:+.1f} pp)" if n else ""
    return f"{count:+d}{points}"


def alpacaeval(data: RunData) -> Html:
    if not data.alpacaeval:
        return section("alpacaeval", "AlpacaEval 2.0", [absent("no AlpacaEval results.",
                       "longsift alpacaeval score ANNOTATIONS --json > RUN_DIR/alpacaeval/MODEL.json")])  # fmt: skip
    rows = []
    for model, result in sorted(data.alpacaeval.items()):
        lc = result.get("length_controlled_winrate")
        lc_cell = pct(lc, 2) if lc is not None else tag("span", LC_MISSING, class_="muted")
        rows.append([
            model, pct(result.get("win_rate"), 2), number(result.get("standard_error"), 2), lc_cell,
            pct(result.get("discrete_win_rate"), 2), number(result.get("n_total")), number(result.get("avg_length"), 0),
        ])  # fmt: skip
    header = ["Model", "Win rate", "SE", "LC win rate", "Discrete win rate", "N", "Avg length"]
    note = tag("p", "Win rates in percent against the AlpacaEval 2.0 reference, as on the leaderboard.", class_="lead")
    return section(
        "alpacaeval", "AlpacaEval 2.0", [note, table(header, rows, id="alpacaeval-table"), leaderboard(data.alpacaeval)]
    )


def _category_score(value: Any) -> float | None:
    return value.get("score") if isinstance(value, Mapping) else value


def mtbench(data: RunData) -> Html:
    if not data.mtbench:
        return section("mtbench", "MT-Bench", [absent("no MT-Bench scores.", "RUN_DIR/mtbench/MODEL.json")])
    rows = [
        [model, result.get("judge") or "—", number(result.get("turn_1")), number(result.get("turn_2")),
         number(result.get("overall")), number(result.get("n_failed"))]
        for model, result in sorted(data.mtbench.items())
    ]  # fmt: skip
    header = ["Model", "Judge", "Turn 1", "Turn 2", "Overall", "Failed"]
    scores = {
        m: {c: _category_score(v) for c, v in (r.get("categories") or {}).items()} for m, r in data.mtbench.items()
    }
    categories = sorted({c for per_model in scores.values() for c in per_model})
    by_category = [[c, *(number(scores[m].get(c)) for m in sorted(scores))] for c in categories]
    body: list[Any] = [table(header, rows, id="mtbench-table")]
    if categories:
        body += [table(["Category", *sorted(scores)], by_category, class_="compact"),
                 image(plots.mtbench_categories(scores), "MT-Bench score per category")]  # fmt: skip
    return section("mtbench", "MT-Bench", body)


def length_bias(data: RunData) -> Html:
    analysis = data.analysis
    if not analysis:
        return section("length-bias", "Length bias", [absent("no length analysis.", "longsift analyze RUN_DIR")])
    unit = analysis["unit"]["description"]
    body: list[Any] = [tag("p", ["Lengths are counted in ", tag("strong", unit), ". Win rate counts a tie as half a "
                       "win; intervals are seeded percentile bootstraps (95%)."], class_="lead")]  # fmt: skip
    models = analysis.get("lengths", {}).get("models", {})
    if models:
        columns = (("n", 0), ("mean", 1), ("median", 1), ("p90", 1), ("max", 0))
        rows = [[m, *(number(s["all"].get(k), d) for k, d in columns)] for m, s in models.items()]
        histogram = plots.length_histograms(analysis["lengths"].get("histogram"), unit)
        body += [
            tag("h3", "Response lengths"),
            table(["Model", "Responses", "Mean", "Median", "p90", "Max"], rows),
            image(histogram, "response lengths"),
        ]
    for comparison in analysis.get("comparisons", []):
        body += _bias_panel(comparison, analysis["settings"]["tolerance"])
    body += _judge_tables(analysis)
    body += length_judge_agreement(analysis)
    return section("length-bias", "Length bias", body)


# --- how much of an LLM judge's verdicts a length-only judge reproduces (written by analyze when it ran) -------

AGREEMENT_HINTS = ("length", "longest", "reference")


def _agreement_entries(value: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Mapping[str, Any]]]:
    """Every mapping with a kappa under a key that names the length-only judge, wherever analyze put it."""
    found: list[tuple[tuple[str, ...], Mapping[str, Any]]] = []
    if isinstance(value, Mapping):
        named = any(h in k.lower() for k in path for h in AGREEMENT_HINTS)
        if named and any("kappa" in str(k).lower() for k in value):
            return [(path, value)]
        for key, inner in value.items():
            found += _agreement_entries(inner, (*path, str(key)))
    elif isinstance(value, list) and len(path) < 6:
        for i, inner in enumerate(value):
            label = str(inner.get("judge") or inner.get("policy") or i) if isinstance(inner, Mapping) else str(i)
            found += _agreement_entries(inner, (*path, label))
    return found


LENGTH_ONLY = "length_only_agreement"  # analyze: comparisons[i].policies[policy].length_only_agreement


def length_judge_agreement(analysis: Mapping[str, Any]) -> list[Any]:
    rows = []
    for comparison in analysis.get("comparisons") or []:
        for policy, bias in (comparison.get("policies") or {}).items():
            found = bias.get(LENGTH_ONLY) if isinstance(bias, Mapping) else None
            if isinstance(found, Mapping):
                rows.append([f"{comparison.get('model_a')} vs {comparison.get('model_b')}",
                             judge_label(str(comparison.get("judge", ""))), policy, number(found.get("n")),
                             pct(found.get("agreement_pct")) if found.get("agreement_pct") is not None
                             else "no judged pair", _kappa(found), _confusion(found)])  # fmt: skip
    if rows:
        header = ["Comparison", "Judge", "Policy", "Pairs", "Agreement", "Cohen's κ", "Judge → length-only (counts)"]
        return [tag("h3", "LLM judge vs a length-only judge"), tag("p", AGREEMENT_LEAD, class_="lead"),
                tag("div", table(header, rows, id="length-judge-agreement"), class_="scroll")]  # fmt: skip
    return _generic_agreement(analysis)


AGREEMENT_LEAD = ("How often a judge that only prefers the longer answer gives the LLM judge's verdict (A's view: win, "
                  "tie, lose): agreement and Cohen's κ (0: no better than chance, 1: the same verdicts).")  # fmt: skip


def _kappa(found: Mapping[str, Any]) -> str:
    kappa = found.get("kappa")
    if kappa is None:
        return "undefined: one verdict only"
    chance = found.get("chance")
    return number(kappa, 3) + (f" (chance {100.0 * chance:.1f}%)" if isinstance(chance, int | float) else "")


def _confusion(found: Mapping[str, Any]) -> str:
    labels, matrix = found.get("labels"), found.get("confusion")
    if not (isinstance(labels, list) and isinstance(matrix, list) and len(matrix) == len(labels)):
        return "not recorded"
    return "; ".join(f"{a}: " + " ".join(f"{b} {n}" for b, n in zip(labels, row, strict=False) if n)
                     for a, row in zip(labels, matrix, strict=True) if isinstance(row, list) and any(row))  # fmt: skip


def _generic_agreement(analysis: Mapping[str, Any]) -> list[Any]:
    """Any other layout: every mapping with a kappa under a key naming the length-only judge."""
    entries = _agreement_entries(analysis)
    if not entries:
        return []
    scalar = [k for _, entry in entries for k, v in entry.items() if not isinstance(v, Mapping | list)]
    fields = list(dict.fromkeys(scalar))
    rows = [[" › ".join(path), *(_agreement_cell(entry.get(k)) for k in fields)] for path, entry in entries]
    lead = tag("p", AGREEMENT_LEAD, class_="lead")
    header = ["Where", *(f.replace("_", " ") for f in fields)]
    return [tag("h3", "LLM judge vs a length-only judge"), lead,
            tag("div", table(header, rows, id="length-judge-agreement"), class_="scroll")]  # fmt: skip


def _agreement_cell(value: Any) -> str:
    if isinstance(value, float):
        return number(value, 3)
    return "not recorded" if value is None else number(value)


def _bias_panel(comparison: Mapping[str, Any], tolerance: float) -> list[Any]:
    rows = []
    for policy, bias in comparison["policies"].items():
        overall, matched, longer = bias["overall"], bias["length_matched"], bias["longer_answer_wins"]
        rows.append([
            policy, _rate(overall), join([_rate(matched), tag("span", f" n={matched['n']}", class_="count")]),
            join([pct(longer["longer_share"]), tag("span", f" of {longer['decided'] - longer['equal_length']}",
                                                   class_="count")]),
            pct(bias["a_longer_share"]), number(bias["skipped"]["failed"] + bias["skipped"]["missing_length"]),
        ])  # fmt: skip
    header = ["Policy", "Win rate (95% CI)", f"Length-matched (±{tolerance:.0%})", "Longer answer wins",
              "A's answer longer", "Left out"]  # fmt: skip
    title = f"{comparison['model_a']} vs {comparison['model_b']} · judge {judge_label(str(comparison['judge']))}"
    bins = [[f"{r['low']:+.2f} … {r['high']:+.2f}", number(r["n"]), _rate(r)]
            for r in next(iter(comparison["policies"].values()))["by_length_difference"]]  # fmt: skip
    return [
        tag("h3", title),
        table(header, rows, class_="bias"),
        image(plots.win_rate_by_length(comparison["policies"]), f"win rate by length difference, {title}"),
        tag("details", [tag("summary", "Bins (first policy)"), table(["(A − B) / longer", "Pairs", "Win rate"], bins)]),
    ]


def _rate(row: Mapping[str, Any]) -> str:
    if row.get("win_rate") is None:
        return "—"
    return f"{row['win_rate']:.1f}% ({row['ci_low']:.1f}–{row['ci_high']:.1f})"


def _judge_tables(analysis: Mapping[str, Any]) -> list[Any]:
    body: list[Any] = []
    if analysis.get("position_bias"):
        rows = [[judge_label(r["judge"]), number(r["judged"]), number(r["failed"]), pct(r["flip_rate"]),
                 number(r["first_always_won"]), number(r["second_always_won"]), pct(r["first_position_share"])]
                for r in analysis["position_bias"]]  # fmt: skip
        header = ["Judge", "Judged", "Failed", "Position flips", "First shown won both", "Second shown won both",
                  "First position wins"]  # fmt: skip
        body += [tag("h3", "Position bias"), table(header, rows, id="position-table")]
    if analysis.get("judge_agreement"):
        rows = [[judge_label(r["judge_1"]), judge_label(r["judge_2"]), policy, number(s["n"]), pct(s["agreement_pct"]),
                 number(s["kappa"], 3)]
                for r in analysis["judge_agreement"] for policy, s in r["policies"].items()]  # fmt: skip
        body += [tag("h3", "Judge agreement"),
                 table(["Judge 1", "Judge 2", "Policy", "Prompts", "Agreement", "Cohen's κ"], rows)]  # fmt: skip
    return body


def selection(data: RunData) -> Html:
    profile = (data.analysis or {}).get("selection")
    if not (data.selection_files or data.selection_summary or profile):
        return section("selection", "Selection", [absent("no selection.", "longsift select ... -o RUN_DIR/select/")])
    body: list[Any] = []
    if data.selection_files:
        names = [tag("code", p.name) for p in data.selection_files]
        body.append(tag("p", ["Selected subsets: ", *_comma(names)]))
    if profile:
        body += [tag("h3", "Length profile (" + profile["unit"]["description"] + ")"), _profile_table(profile),
                 tag("p", PAPER_FIG_1B, class_="muted")]  # fmt: skip
    if data.selection_summary is not None:
        body += [tag("h3", "Selection summary"), tag("div", summary_table(data.selection_summary), class_="scroll")]
    body += compare_sections(data.run_dir)  # compare stages and the selection study's ranking
    return section("selection", "Selection", body)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(_flatten(inner, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): value}


def _plain(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_plain(v) for v in value) or "none"
    if isinstance(value, Mapping):
        return "none"
    if value is None:
        return "not set"
    return number(value, 3) if isinstance(value, float) else number(value)


def summary_table(summary: Any) -> Html:
    """select/summary.json as a table: one column per selection (its keys), one row per (flattened) field."""
    if not isinstance(summary, Mapping):
        return tag("p", _plain(summary))
    per_selection = all(isinstance(v, Mapping) for v in summary.values()) and any(
        isinstance(v, Mapping) and ("selected" in v or "k" in v or "method" in v) for v in summary.values()
    )
    columns = dict(summary) if per_selection else {"selection": summary}
    flat = {name: _flatten(value) for name, value in columns.items()}
    fields = list(dict.fromkeys(key for table_ in flat.values() for key in table_))
    rows = [[tag("th", key.replace(".", " › ")),
             *(tag("td", _plain(flat[name][key]) if key in flat[name] else "not recorded") for name in flat)]
            for key in fields]  # fmt: skip
    head = tag("thead", [tag("tr", [tag("th", "Field"), *(tag("th", name) for name in flat)])])
    return tag("table", [head, tag("tbody", [tag("tr", r) for r in rows])], class_="kv", id="selection-summary")


def _comma(items: list[Html]) -> list[Any]:
    out: list[Any] = []
    for i, item in enumerate(items):
        out += ([", "] if i else []) + [item]
    return out


def _profile_table(profile: Mapping[str, Any]) -> Html:
    entries = ([("source", profile["source"])] if profile.get("source") else []) + list(profile["subsets"].items())
    rows = []
    for name, row in entries:
        response, instruction = row["response"], row["instruction"]
        quality = ", ".join(f"{k} {v['mean']:.2f}" for k, v in row["quality"].items()) or "—"
        rows.append([name, number(row["n"]), number(response.get("mean"), 1), number(response.get("median"), 1),
                     number(response.get("p90"), 1), number(instruction.get("mean"), 1),
                     "—" if row.get("mean_ratio") is None else f"×{row['mean_ratio']:.2f}", quality])  # fmt: skip
    header = ["Set", "Examples", "Mean response", "Median", "p90", "Mean instruction", "vs source", "Quality (mean)"]
    return table(header, rows, id="selection-table")


def training(data: RunData) -> Html:
    if not data.training:
        return section("training", "Training", [absent("no training runs.", "RUN_DIR/train/MODEL/loss.json")])
    rows = []
    for run in data.training:
        losses = [p["loss"] for p in run.loss if p["loss"] is not None]  # a diverged step's NaN is written null
        epochs = max((p.get("epoch") or 0 for p in run.loss), default=None)
        first, last, low = (losses[0], losses[-1], min(losses)) if losses else (None, None, None)
        rows.append([run.name, number(len(run.loss)), number(epochs), *(number(v, 4) for v in (first, last, low))])
    body: list[Any] = [
        table(["Model", "Logged steps", "Epochs", "First loss", "Last loss", "Min loss"], rows, id="training-table"),
        image(plots.loss_curves({run.name: run.loss for run in data.training}), "training loss"),
    ]
    for run in data.training:
        if not run.loss and run.loss_png is not None:  # no loss.json: show the train stage's own drawing
            png = base64.b64encode(run.loss_png.read_bytes()).decode("ascii")
            body += [tag("h3", f"{run.name} (loss.png)"), image(png, f"training loss of {run.name}", "image/png")]
        if run.config is not None:
            body.append(tag("details", [tag("summary", f"Resolved config: {run.name}"), pre_json(run.config)]))
    return section("training", "Training", body)


def headline_section(head: Headline) -> Html:
    """The page's first section: the same rows `longsift run` prints (longsift.report.headline)."""
    body: list[Any] = []
    if head.banner:
        body.append(tag("div", [tag("strong", "Demo run. "), "The numbers below exercise the pipeline; they say "
                                "nothing about the method: ", "; ".join(head.banner), "."], class_="banner",
                        id="demo-banner"))  # fmt: skip
    pairwise, benchmarks = table_rows(head)
    if pairwise:
        rows = [tag("tr", [tag("td", c, class_="warn" if i == 8 and "small sample" in c else None)
                           for i, c in enumerate(r)], class_=None if r[0] == "this run" else "reference")
                for r in pairwise]  # fmt: skip
        body += [tag("h3", "Pairwise judging (all test sets)"), tag("p", "Win / tie / lose of judged prompts, from "
                 "A's side, with 95% Wilson intervals; failed judgments are counted apart. Reference rows are the "
                 "paper's published results.", class_="lead"),
                 tag("div", tag("table", [tag("thead", tag("tr", [tag("th", h) for h in PAIRWISE_HEADER])),
                                          tag("tbody", rows)], class_="headline", id="headline-pairwise"),
                     class_="scroll")]  # fmt: skip
    if benchmarks:
        body += [tag("h3", "Benchmarks"),
                 tag("div", table(BENCHMARK_HEADER, benchmarks, class_="headline", id="headline-benchmarks"),
                     class_="scroll")]  # fmt: skip
    if head.empty:
        body.append(absent("no results yet: no judgments, AlpacaEval, MT-Bench or Open LLM results in this run."))
    return section("headline", "Headline", body)


def refinement(data: RunData) -> Html:
    if not data.refined:
        return section("refinement", "Refinement", [absent("no refined selection.", "longsift refine SUBSET -o "
                       "RUN_DIR/select/NAME.jsonl --output-format messages")])  # fmt: skip
    body: list[Any] = [tag("p", "What the refine stage did to each record: refined (the answer was replaced), "
                       "unchanged (the LLM kept it), failed (the original is kept; the reason's kind is the first "
                       "word of metadata.refine_error). Lengths in words.", class_="lead")]  # fmt: skip
    for name, records in data.refined.items():
        body += refinement_block(name, records)
    return section("refinement", "Refinement", body)
