"""The `compare` section (selections side by side) and the selection study's ranking of arms, as HTML with inline
SVG plots. Used by the run report (`run_sections`, one hook in sections.selection) and by `longsift compare`'s
page of its own (`standalone_page`).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from longsift.report.markup import Html, esc, join, number, table, tag

PALETTE = ("#3b6fd8", "#e08a1e", "#2e9d5b", "#c0449a", "#6a5acd", "#8c6d31", "#17becf", "#7f7f7f")
COMPARE_DIR, RANKING = "compare", "study/ranking.json"  # in a run folder: compare/<stage>/compare.json


def _names(result: Mapping[str, Any]) -> list[str]:
    return [s["name"] for s in result["selections"]]


def _cell_colour(value: float) -> str:
    shade = int(255 - 170 * max(0.0, min(1.0, value)))
    return f"rgb({shade},{shade + (255 - shade) // 3},255)"


def jaccard_svg(result: Mapping[str, Any]) -> Html:
    """The Jaccard matrix as a heatmap: darker is more shared."""
    names, jaccard = _names(result), result["overlap"]["jaccard"]
    cell, left, top = 56, 130, 24
    size = len(names) * cell
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" role="img" width="{left + size + 8}" '
             f'height="{top + size + 8}" viewBox="0 0 {left + size + 8} {top + size + 8}">',
             "<title>Jaccard index of every pair of selections</title>"]  # fmt: skip
    for i, name in enumerate(names):
        y = top + i * cell
        parts.append(f'<text x="{left - 6}" y="{y + cell / 2 + 4}" text-anchor="end" font-size="12">{esc(name)}</text>')
        parts.append(f'<text x="{left + i * cell + cell / 2}" y="{top - 8}" text-anchor="middle" font-size="11">'
                     f"{esc(name[:8])}</text>")  # fmt: skip
        for j, value in enumerate(jaccard[i]):
            x = left + j * cell
            parts.append(f'<rect x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}" fill="{_cell_colour(value)}">'
                         f"<title>{esc(name)} / {esc(names[j])}: {value:.3f}</title></rect>")  # fmt: skip
            colour = "#fff" if value > 0.55 else "#1f2328"
            parts.append(f'<text x="{x + cell / 2 - 1}" y="{y + cell / 2 + 4}" text-anchor="middle" font-size="12" '
                         f'fill="{colour}">{value:.2f}</text>')  # fmt: skip
    parts.append("</svg>")
    return Html("".join(parts))


def histogram_svg(histogram: Mapping[str, Any], unit: str) -> Html | None:
    """Each selection's response lengths on shared bins, one line per selection."""
    counts: Mapping[str, Sequence[int]] = histogram.get("counts") or {}
    edges = histogram.get("edges") or []
    if not counts or len(edges) < 2:
        return None
    width, height, pad = 640, 220, 40
    peak = max((max(c) for c in counts.values() if len(c)), default=0) or 1
    span = edges[-1] - edges[0] or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" role="img" width="{width}" height="{height + 40}" '
             f'viewBox="0 0 {width} {height + 40}"><title>response length ({esc(unit)}) per selection</title>',
             f'<line x1="{pad}" y1="{height}" x2="{width - 8}" y2="{height}" stroke="#999"/>',
             f'<text x="{pad}" y="{height + 16}" font-size="11">{edges[0]:.0f}</text>',
             f'<text x="{width - 8}" y="{height + 16}" font-size="11" text-anchor="end">{edges[-1]:.0f} {esc(unit)}'
             "</text>"]  # fmt: skip
    for at, (name, row) in enumerate(counts.items()):
        points = []
        for i, count in enumerate(row):
            middle = (edges[i] + edges[i + 1]) / 2
            x = pad + (middle - edges[0]) / span * (width - pad - 8)
            points.append(f"{x:.1f},{height - count / peak * (height - 12):.1f}")
        colour = PALETTE[at % len(PALETTE)]
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(points)}">'
                     f"<title>{esc(name)}</title></polyline>")  # fmt: skip
        parts.append(f'<text x="{pad + 8 + 130 * at}" y="{height + 34}" font-size="12" fill="{colour}">'
                     f"■ {esc(name)}</text>")  # fmt: skip
    parts.append("</svg>")
    return Html("".join(parts))


def bars_svg(values: Mapping[str, float | None], title: str) -> Html | None:
    """One horizontal bar per selection."""
    shown = {k: v for k, v in values.items() if v is not None}
    if not shown:
        return None
    top = max(shown.values()) or 1.0
    width, row, left = 520, 22, 130
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" role="img" width="{width}" '
             f'height="{row * len(shown) + 8}"><title>{esc(title)}</title>']  # fmt: skip
    for at, (name, value) in enumerate(shown.items()):
        length = value / top * (width - left - 60)
        y = at * row + 4
        parts.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end" font-size="12">{esc(name)}</text>'
                     f'<rect x="{left}" y="{y}" width="{length:.1f}" height="{row - 6}" '
                     f'fill="{PALETTE[at % len(PALETTE)]}"/><text x="{left + length + 4:.1f}" y="{y + 14}" '
                     f'font-size="12">{value:.4f}</text>')  # fmt: skip
    parts.append("</svg>")
    return Html("".join(parts))


def overlap_table(result: Mapping[str, Any]) -> Html:
    names, counts, jaccard = _names(result), result["overlap"]["counts"], result["overlap"]["jaccard"]
    rows = [[tag("th", name), *(tag("td", f"{counts[i][j]:,} ({jaccard[i][j]:.3f})", data_i=str(i), data_j=str(j))
                                for j in range(len(names)))] for i, name in enumerate(names)]  # fmt: skip
    head = tag("thead", [tag("tr", [tag("th", "shared (Jaccard)"), *(tag("th", n) for n in names)])])
    return tag("table", [head, tag("tbody", [tag("tr", r) for r in rows])], id="compare-overlap")


def selections_table(result: Mapping[str, Any]) -> Html:
    rows = []
    for row in result["selections"]:
        how = row["matched"]
        found = ", ".join(f"{k} {v}" for k, v in sorted(how.items()) if v) or "—"
        rows.append([row["name"], number(row["n"]), number(row["distinct"]), found])
    return table(["Selection", "Records", "Distinct", "Matched to the pool by"], rows, id="compare-selections")


def lengths_block(result: Mapping[str, Any]) -> list[Any]:
    body: list[Any] = []
    for unit, block in result["lengths"].items():
        rows = []
        for name, row in [("pool", block["pool"]), *block["selections"].items()]:
            response, instruction = row["response"], row["instruction"]
            rows.append([name, number(row["n"]), number(response.get("mean"), 1), number(response.get("median"), 1),
                         number(response.get("p90"), 1), number(response.get("max")),
                         number(instruction.get("mean"), 1)])  # fmt: skip
        header = ["Set", "Records", "Mean response", "Median", "p90", "Max", "Mean instruction"]
        body += [tag("h4", f"Lengths in {block['unit']['description']}"),
                 table(header, rows, class_="compare-lengths", data_unit=unit),
                 histogram_svg(block["histogram"], unit)]  # fmt: skip
    return body


def diversity_block(result: Mapping[str, Any]) -> list[Any]:
    diversity = result.get("diversity")
    if not diversity:
        return [tag("p", "Diversity not measured (run without --no-embeddings).", class_="muted")]
    names = _names(result)
    rows = [
        [
            name,
            number(diversity[name]["n"]),
            number(diversity[name]["mean_pairwise_distance"], 4),
            number(diversity[name]["radius"], 4),
            number(diversity[name]["mean_nearest"], 4),
        ]
        for name in names
    ]
    rows.append(["pool", number(diversity["pool"]["n"]), number(diversity["pool"]["mean_pairwise_distance"], 4),
                 "0", "0"])  # fmt: skip
    header = ["Set", "Distinct records", "Mean pairwise cosine distance", "k-center radius over the pool",
              "Mean distance to nearest"]  # fmt: skip
    return [
        tag("p", ["Embeddings: ", tag("code", result.get("encoder", "")), ". Radius: max over pool rows of the "
                  "cosine distance to the nearest selected record (lower covers the pool better)."], class_="muted"),
        table(header, rows, id="compare-diversity"),
        tag("p", "Mean pairwise cosine distance (higher: more diverse)", class_="muted"),
        bars_svg({n: diversity[n]["mean_pairwise_distance"] for n in names}, "mean pairwise cosine distance"),
        tag("p", "k-center radius over the pool (lower: the pool better covered)", class_="muted"),
        bars_svg({n: diversity[n]["radius"] for n in names}, "k-center radius over the pool"),
    ]  # fmt: skip


def scores_block(result: Mapping[str, Any]) -> list[Any]:
    scores = result.get("scores") or {}
    if not scores:
        return [tag("p", "No numeric scores (llm_score, ifd, ...) on these records.", class_="muted")]
    rows = []
    for key, owners in scores.items():
        for owner, stats in owners.items():
            if stats.get("n"):
                rows.append(
                    [
                        key,
                        owner,
                        f"{stats['carried_by']:,} of {stats['of']:,}",
                        number(stats["mean"], 3),
                        number(stats["median"], 3),
                        number(stats["min"], 3),
                        number(stats["max"], 3),
                    ]
                )
    return [table(["Field", "Set", "Carried by", "Mean", "Median", "Min", "Max"], rows, id="compare-scores")]


def mix_block(result: Mapping[str, Any]) -> list[Any]:
    mix = result.get("mix") or {}
    names = sorted({name for owner in mix.values() for name in owner})
    owners = list(mix)
    rows = [[name, *(f"{mix[o][name]['share'] * 100:.1f}%" if name in mix[o] else "—" for o in owners)]
            for name in names[:30]]  # fmt: skip
    return [table(["Source", *owners], rows, id="compare-mix")]


def unique_block(result: Mapping[str, Any]) -> list[Any]:
    body: list[Any] = []
    for name, unique in result["unique"].items():
        items = [tag("li", [tag("code", f"row {e['pool_row']}" if e["pool_row"] is not None else e["id"]), " ",
                            e["instruction"][:160], tag("span", f" ({e['response_chars']:,} chars)", class_="count")])
                 for e in unique["examples"]]  # fmt: skip
        body.append(tag("details", [tag("summary", f"{name}: {unique['n']:,} records no other selection holds"),
                                    tag("ul", items)], class_="compare-unique", data_name=name))  # fmt: skip
    return body


def comparison(result: Mapping[str, Any], heading: str = "Selections compared") -> Html:
    pool = result["pool"]
    return tag("div", [
        tag("h3", heading),
        tag("p", [f"Pool: {pool['n']:,} records (", tag("code", pool["path"]), ")."], class_="facts"),
        selections_table(result), tag("h4", "Overlap"), overlap_table(result), jaccard_svg(result),
        tag("h4", "Diversity"), *diversity_block(result), *lengths_block(result),
        tag("h4", "Scores"), *scores_block(result), tag("h4", "Source mix"), *mix_block(result),
        tag("h4", "Unique records"), *unique_block(result),
    ], class_="compare")  # fmt: skip


def ranking_table(ranking: Mapping[str, Any]) -> Html:
    rows = []
    for at, arm in enumerate(ranking.get("arms") or [], start=1):
        rows.append([str(at), arm["arm"], number(arm.get("winning_score"), 3), number(arm.get("win_pct"), 1),
                     number(arm.get("tie_pct"), 1), number(arm.get("lose_pct"), 1), number(arm.get("judged")),
                     number(arm.get("alpacaeval_win_rate"), 2)])  # fmt: skip
    header = ["Rank", "Arm", f"Winning score vs {ranking.get('reference', 'reference')}", "Win %", "Tie %", "Lose %",
              "Judged", "AlpacaEval win rate"]  # fmt: skip
    return tag("div", [
        tag("h3", "Selection study: arms ranked"),
        tag("p", ranking.get("rule", ""), class_="muted"), table(header, rows, id="study-ranking"),
    ], class_="study")  # fmt: skip


def run_sections(run_dir: Path) -> list[Html]:
    """What a run folder holds of `compare` stages and a study ranking, rendered (nothing when it holds none)."""
    import orjson

    found: list[Html] = []
    ranking = Path(run_dir) / RANKING
    if ranking.is_file():
        found.append(ranking_table(orjson.loads(ranking.read_bytes())))
    folder = Path(run_dir) / COMPARE_DIR
    for path in sorted(folder.glob("*/compare.json")) if folder.is_dir() else []:
        found.append(comparison(orjson.loads(path.read_bytes()), f"Selections compared ({path.parent.name})"))
    return found


def standalone_page(result: Mapping[str, Any], title: str) -> str:
    """`longsift compare`'s own page: the report's style, no script, nothing fetched."""
    style = resources.files("longsift.report").joinpath("static", "report.css").read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode("ascii")
    csp = f"default-src 'none'; img-src data:; style-src 'sha256-{digest}'; form-action 'none'; base-uri 'none'"
    return str(join([
        Html('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'),
        Html(f'<meta http-equiv="Content-Security-Policy" content="{esc(csp)}">'), tag("title", title),
        Html(f"<style>{style}</style></head><body>"), tag("header", [tag("h1", title)], class_="page"),
        tag("main", [tag("section", [tag("h2", "Selections compared"), comparison(result, "Overview")],
                         id="compare")]),
        Html("</body></html>\n"),
    ]))  # fmt: skip
