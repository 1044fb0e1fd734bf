"""A Markdown summary of a run for papers and pull requests: the headline numbers, no answers, no plots.

Every value that comes from the run (model, judge and test-set names, titles, paths) goes through `md_text`:
HTML is escaped to entities and Markdown's inline syntax is backslash-escaped, so a name renders as its own
text: never as markup, a link, an image or an extra table cell.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from typing import Any

from longsift.report.collect import RunData
from longsift.report.headline import BENCHMARK_HEADER, PAIRWISE_HEADER, Headline, table_rows
from longsift.report.markup import number, pct
from longsift.verdicts import POLICIES

_INLINE_SYNTAX = re.compile(r"([\\`*_\[\]|~])")  # emphasis, code, links and images, table cells, strikethrough


def md_text(value: Any) -> str:
    """`value` as literal Markdown text on one line."""
    text = " ".join(str(value).split())
    return html.escape(_INLINE_SYNTAX.sub(r"\\\1", text), quote=False)


def md_table(header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(md_text(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(md_text(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _share(row: dict[str, Any], key: str) -> str:
    judged = row.get("judged", (row.get("n") or 0) - (row.get("failed") or 0))
    value = row.get(f"{key}_pct")
    if value is None and judged:
        value = 100.0 * (row.get(key) or 0) / judged
    return f"{pct(value)} ({row.get(key, 0)})"


def markdown(data: RunData, title: str, absent: list[str], head: Headline | None = None) -> str:
    lines = [f"# {md_text(title)}", ""]
    if absent:
        lines += ["Absent from this run: " + "; ".join(map(md_text, absent)) + ".", ""]
    if head is not None and not head.empty:
        lines += _headline(head)
    for comparison in data.comparisons:
        lines += [f"## {md_text(comparison.title)}", ""]
        for policy in (p for p in POLICIES if p in comparison.tables):
            rows = [
                [s, number(r.get("n")), number(r.get("failed")), _share(r, "win"), _share(r, "tie"), _share(r, "lose"),
                 number(r.get("winning_score"), 3)]
                for s, r in comparison.tables[policy].items()
            ]  # fmt: skip
            lines += [f"**{md_text(policy)} policy**", ""]
            lines += md_table(["Test set", "N", "Failed", "Win", "Tie", "Lose", "Winning score"], rows)
    if data.alpacaeval:
        rows = [[m, pct(r.get("win_rate"), 2), number(r.get("standard_error"), 2),
                 pct(r.get("length_controlled_winrate"), 2) if r.get("length_controlled_winrate") is not None
                 else "n/a (needs the difficulty table)", number(r.get("n_total"))]
                for m, r in sorted(data.alpacaeval.items())]  # fmt: skip
        lines += ["## AlpacaEval 2.0", "", *md_table(["Model", "Win rate", "SE", "LC win rate", "N"], rows)]
    if data.mtbench:
        rows = [[m, number(r.get("turn_1")), number(r.get("turn_2")), number(r.get("overall"))]
                for m, r in sorted(data.mtbench.items())]  # fmt: skip
        lines += ["## MT-Bench", "", *md_table(["Model", "Turn 1", "Turn 2", "Overall"], rows)]
    lines += _length_bias(data.analysis)
    if data.training:
        rows = [[t.name, number(len(t.loss)), number(t.loss[-1]["loss"] if t.loss else None, 4)] for t in data.training]
        lines += ["## Training", "", *md_table(["Model", "Logged steps", "Last loss"], rows)]
    return "\n".join(lines).rstrip() + "\n"


def _headline(head: Headline) -> list[str]:
    """The HTML page's headline rows (longsift.report.headline), the same numbers."""
    lines = ["## Headline", ""]
    if head.banner:
        lines += ["**Demo run**: " + md_text("; ".join(head.banner)), ""]
    pairwise, benchmarks = table_rows(head)
    if pairwise:
        lines += md_table(PAIRWISE_HEADER, pairwise)
    if benchmarks:
        lines += md_table(BENCHMARK_HEADER, benchmarks)
    return lines


def _length_bias(analysis: dict[str, Any] | None) -> list[str]:
    if not analysis:
        return []
    unit = md_text(analysis["unit"]["description"])
    lines = ["## Length bias", "", f"Lengths in {unit}; ties count half a win.", ""]
    rows = []
    for comparison in analysis.get("comparisons", []):
        for policy, bias in comparison["policies"].items():
            overall, matched = bias["overall"], bias["length_matched"]
            rows.append([f"{comparison['model_a']} vs {comparison['model_b']}", comparison["judge"], policy,
                         pct(overall["win_rate"]), f"{pct(matched['win_rate'])} (n={matched['n']})",
                         pct(bias["longer_answer_wins"]["longer_share"])])  # fmt: skip
    if rows:
        header = ["Comparison", "Judge", "Policy", "Win rate", "Length-matched", "Longer answer wins"]
        lines += md_table(header, rows)
    flips = [
        [r["judge"], pct(r["flip_rate"]), pct(r["first_position_share"])] for r in analysis.get("position_bias", [])
    ]
    if flips:
        lines += md_table(["Judge", "Position flips", "First position wins"], flips)
    selection = analysis.get("selection")
    if selection:
        entries = ([("source", selection["source"])] if selection.get("source") else []) + list(
            selection["subsets"].items()
        )
        rows = [[name, number(p["n"]), number(p["response"].get("mean"), 1)] for name, p in entries]
        lines += [f"Selection profile ({md_text(selection['unit']['description'])}):", ""]
        lines += md_table(["Set", "Examples", "Mean response length"], rows)
    return lines
