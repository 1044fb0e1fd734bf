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
from longsift.report.compare import run_sections as compare_sections
from longsift.report.markup import Html, absent, image, join, number, pct, pre_json, table, tag
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
    return section("alpacaeval", "AlpacaEval 2.0", [note, table(header, rows, id="alpacaeval-table")])


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
    return section("length-bias", "Length bias", body)


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
    title = f"{comparison['model_a']} vs {comparison['model_b']} · judge {comparison['judge']}"
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
        rows = [[r["judge"], number(r["judged"]), number(r["failed"]), pct(r["flip_rate"]),
                 number(r["first_always_won"]), number(r["second_always_won"]), pct(r["first_position_share"])]
                for r in analysis["position_bias"]]  # fmt: skip
        header = ["Judge", "Judged", "Failed", "Position flips", "First shown won both", "Second shown won both",
                  "First position wins"]  # fmt: skip
        body += [tag("h3", "Position bias"), table(header, rows, id="position-table")]
    if analysis.get("judge_agreement"):
        rows = [[r["judge_1"], r["judge_2"], policy, number(s["n"]), pct(s["agreement_pct"]), number(s["kappa"], 3)]
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
        body += [tag("h3", "Selection summary"), pre_json(data.selection_summary)]
    body += compare_sections(data.run_dir)  # compare stages and the selection study's ranking (report/compare.py)
    return section("selection", "Selection", body)


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
            body += [tag("h3", f"{run.name} (loss.png)"), image(png, f"training loss of {run.name}")]
        if run.config is not None:
            body.append(tag("details", [tag("summary", f"Resolved config: {run.name}"), pre_json(run.config)]))
    return section("training", "Training", body)
