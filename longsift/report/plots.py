"""Plots as base64 SVG strings for embedding (`<img src="data:image/svg+xml;base64,...">`): crisp at any zoom.

Figures are built with `matplotlib.figure.Figure` directly (no pyplot state), so rendering works headless and in
threads. Text stays text in the SVG (`svg.fonttype: none`), at sizes readable without zooming; the hash salt and
the dropped date make the same data give the same bytes. Each function returns None when there is nothing to draw.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any, cast

WIN, TIE, LOSE = "#2e9d5b", "#9aa3ad", "#d9534f"
PALETTE = ("#3b6fd8", "#e08a1e", "#2e9d5b", "#c0449a", "#6a5acd", "#8c6d31", "#17becf", "#7f7f7f")


STYLE: dict[str, Any] = {"svg.fonttype": "none", "svg.hashsalt": "longsift", "font.size": 11, "axes.titlesize": 12,
         "axes.labelsize": 11, "xtick.labelsize": 10, "ytick.labelsize": 10, "legend.fontsize": 10}  # fmt: skip


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _encode(figure: Any) -> str:
    import matplotlib

    buffer = io.BytesIO()
    with matplotlib.rc_context(cast(Any, STYLE)):  # matplotlib's stubs differ across the supported versions
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def outcome_bars(tables: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str | None:
    """Stacked win/tie/lose bars per eval set, one panel per aggregation policy."""
    policies = [p for p, table in tables.items() if table]
    if not policies:
        return None
    sets = list(next(iter(tables.values())))
    figure = _figure(4.2 * len(policies), 0.45 * len(sets) + 1.3)
    axes = figure.subplots(1, len(policies), sharey=True, squeeze=False)[0]
    for ax, policy in zip(axes, policies, strict=True):
        rows = [tables[policy].get(s) or {} for s in sets]
        left = [0.0] * len(sets)
        for key, color in (("win", WIN), ("tie", TIE), ("lose", LOSE)):
            values = [row.get(f"{key}_pct") or 0.0 for row in rows]
            ax.barh(sets, values, left=left, color=color, label=key, height=0.65)
            for y, (start, value) in enumerate(zip(left, values, strict=True)):
                if value >= 8:
                    ax.text(start + value / 2, y, f"{value:.0f}", ha="center", va="center", color="white", fontsize=10)
            left = [a + b for a, b in zip(left, values, strict=True)]
        ax.set_xlim(0, 100)
        ax.set_title(f"{policy} policy", fontsize=12)
        ax.invert_yaxis()
        ax.set_xlabel("% of judged prompts")
    axes[-1].legend(loc="lower right", fontsize=10, ncols=3, bbox_to_anchor=(1.0, 1.08), frameon=False)
    return _encode(figure)


def length_histograms(histogram: Mapping[str, Any] | None, unit: str) -> str | None:
    if not histogram or not histogram.get("counts"):
        return None
    edges = histogram["edges"]
    figure = _figure(6.4, 3.0)
    ax = figure.subplots()
    for i, (model, counts) in enumerate(histogram["counts"].items()):
        ax.stairs(counts, edges, label=model, color=PALETTE[i % len(PALETTE)], linewidth=1.6)
    ax.set_xlabel(f"response length ({unit})")
    ax.set_ylabel("responses")
    ax.legend(fontsize=10, frameon=False)
    return _encode(figure)


def win_rate_by_length(policies: Mapping[str, Mapping[str, Any]]) -> str | None:
    """Win rate per relative-length-difference bin with its bootstrap interval, one line per policy."""
    if not policies:
        return None
    figure = _figure(6.4, 3.0)
    ax = figure.subplots()
    labels: list[str] = []
    for i, (policy, bias) in enumerate(policies.items()):
        rows = bias["by_length_difference"]
        labels = [f"{row['low']:+.2g}…{row['high']:+.2g}" for row in rows]
        xs = [x + (i - 0.5) * 0.12 for x in range(len(rows))]
        points = [(x, r) for x, r in zip(xs, rows, strict=True) if r["win_rate"] is not None]
        if not points:
            continue
        x, y = [p[0] for p in points], [p[1]["win_rate"] for p in points]
        low = [p[1]["win_rate"] - p[1]["ci_low"] for p in points]
        high = [p[1]["ci_high"] - p[1]["win_rate"] for p in points]
        ax.errorbar(x, y, yerr=[low, high], fmt="o", capsize=3, label=policy, color=PALETTE[i % len(PALETTE)])
    ax.axhline(50, color="#888", linewidth=0.8, linestyle="--")
    ax.set_xticks(range(len(labels)), labels, fontsize=9, rotation=20)
    ax.set_ylim(-3, 103)
    ax.set_xlabel("(len A − len B) / longer length")
    ax.set_ylabel("A's win rate, ties ½ (%)")
    ax.legend(fontsize=10, frameon=False)
    return _encode(figure)


def loss_curves(curves: Mapping[str, Sequence[Mapping[str, Any]]]) -> str | None:
    curves = {name: points for name, points in curves.items() if points}
    if not curves:
        return None
    figure = _figure(6.4, 3.0)
    ax = figure.subplots()
    for i, (name, points) in enumerate(curves.items()):
        ax.plot([p["step"] for p in points], [p["loss"] for p in points], label=name, color=PALETTE[i % len(PALETTE)])
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.legend(fontsize=10, frameon=False)
    return _encode(figure)


def mtbench_categories(scores: Mapping[str, Mapping[str, float | None]]) -> str | None:
    """Grouped bars: one group per category, one bar per model."""
    categories = sorted({c for per_model in scores.values() for c in per_model})
    if not categories:
        return None
    figure = _figure(7.0, 3.0)
    ax = figure.subplots()
    width = 0.8 / max(len(scores), 1)
    for i, (model, per_model) in enumerate(scores.items()):
        xs = [c + i * width - 0.4 + width / 2 for c in range(len(categories))]
        ax.bar(xs, [per_model.get(c) or 0.0 for c in categories], width, label=model, color=PALETTE[i % len(PALETTE)])
    ax.set_xticks(range(len(categories)), categories, fontsize=10, rotation=20)
    ax.set_ylim(0, 10)
    ax.set_ylabel("score (1-10)")
    ax.legend(fontsize=10, frameon=False)
    return _encode(figure)
