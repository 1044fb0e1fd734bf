"""The run's AlpacaEval 2.0 result placed among the published leaderboard ($LONGSIFT_DATA/alpaca_eval/leaderboards/).

Ranked by the length-controlled win rate when the run has one (the leaderboard's own order), else by the raw
win rate. The table is plain HTML (readable without JavaScript); report.js makes its columns sortable and adds
a search box. The run's rows are highlighted (`tr.ours`).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longsift.evalsets import data_root
from longsift.report.markup import Html, absent, tag

LEADERBOARD = "alpaca_eval_2__weighted_alpaca_eval_gpt4_turbo_leaderboard.csv"
ANNOTATOR = "weighted_alpaca_eval_gpt4_turbo"
COLUMNS = (("Rank", "num"), ("Model", "text"), ("LC win rate", "num"), ("Win rate", "num"), ("SE", "num"),
           ("Avg length", "num"), ("Filter", "text"))  # fmt: skip


@dataclass(frozen=True)
class Entry:
    name: str
    win_rate: float | None
    lc: float | None
    se: float | None
    avg_length: float | None
    mode: str
    ours: bool = False


def leaderboard_file() -> Path:
    return data_root() / "alpaca_eval" / "leaderboards" / LEADERBOARD


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def read_leaderboard(path: Path) -> list[Entry]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [Entry(str(r.get("") or r.get("name") or "?"), _float(r.get("win_rate")),
                  _float(r.get("length_controlled_winrate")), _float(r.get("standard_error")),
                  _float(r.get("avg_length")), str(r.get("mode") or r.get("filter") or "")) for r in rows]  # fmt: skip


def ours(results: dict[str, dict[str, Any]]) -> list[Entry]:
    return [Entry(model, _float(r.get("win_rate")), _float(r.get("length_controlled_winrate")),
                  _float(r.get("standard_error")), _float(r.get("avg_length")), "this run", True)
            for model, r in sorted(results.items())]  # fmt: skip


def rank(board: list[Entry], entry: Entry) -> tuple[int, str]:
    """Where a run row would stand among the published rows: by its LC win rate when it has one (the
    leaderboard's order), else by its raw win rate."""
    if entry.lc is not None:
        return 1 + sum(1 for e in board if e.lc is not None and e.lc > entry.lc), "LC win rate"
    value = entry.win_rate if entry.win_rate is not None else -math.inf
    return 1 + sum(1 for e in board if e.win_rate is not None and e.win_rate > value), "win rate (no LC in this run)"


def ranked(board: list[Entry], mine: list[Entry]) -> list[tuple[int, Entry]]:
    """Published rows in the leaderboard's order (LC win rate), each run row inserted at its own rank."""
    published = sorted(board, key=lambda e: (-e.lc if e.lc is not None else math.inf, e.name))
    places = [(i + 1, 0, e) for i, e in enumerate(published)] + [(rank(published, e)[0], -1, e) for e in mine]
    return [(place, entry) for place, _, entry in sorted(places, key=lambda p: (p[0], p[1]))]


def placements(results: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Model -> "rank 151 of 224 by LC win rate on the AlpacaEval 2.0 leaderboard" (empty without the file)."""
    path = leaderboard_file()
    if not results or not path.is_file():
        return {}
    board = read_leaderboard(path)
    out = {}
    for entry in ours(results):
        place, measure = rank(board, entry)
        out[entry.name] = f"rank {place} of {len(board) + 1} by {measure} on the AlpacaEval 2.0 leaderboard"
    return out


def _cell(value: float | None, digits: int = 2, missing: str = "not published") -> Html:
    if value is None:
        return tag("td", missing, data_value="", class_="muted")
    return tag("td", f"{value:.{digits}f}", data_value=f"{value:.6f}")


def leaderboard(results: dict[str, dict[str, Any]]) -> Html:
    if not results:
        return Html("")
    path = leaderboard_file()
    if not path.is_file():
        return absent(f"the AlpacaEval leaderboard file is not in the data folder ({path}).",
                      "set LONGSIFT_DATA to the folder holding alpaca_eval/leaderboards/")  # fmt: skip
    board = read_leaderboard(path)
    rows = []
    for place, entry in ranked(board, ours(results)):
        missing_lc = "not computed" if entry.ours else "not published"
        cells = [tag("td", str(place), data_value=str(place)), tag("td", entry.name),
                 _cell(entry.lc, missing=missing_lc), _cell(entry.win_rate), _cell(entry.se),
                 _cell(entry.avg_length, 0), tag("td", entry.mode)]  # fmt: skip
        rows.append(tag("tr", cells, class_="ours" if entry.ours else None))
    head = tag("thead", [tag("tr", [tag("th", name, data_type=kind, scope="col") for name, kind in COLUMNS])])
    lead = tag(
        "p",
        f"The published AlpacaEval 2.0 leaderboard ({ANNOTATOR}, {len(board)} models, {path.name}) in "
        "its order (LC win rate), with this run's rows highlighted at their rank (by LC win rate, or by "
        "win rate for a result without one). Click a column to sort; type to filter.",
        class_="lead",
    )
    search = Html(
        '<label class="board-search">Filter <input id="leaderboard-search" type="search" '
        'placeholder="model name"></label>'
    )
    table = tag("table", [head, tag("tbody", rows)], id="leaderboard", class_="sortable")
    board_table = tag("div", table, class_="scroll board")
    return tag("div", [tag("h3", "Placement on the leaderboard"), lead, search, board_table], id="leaderboard-block")
