"""A run's stage timeline: each stage's start, wall time, and the LLM calls, tokens and cost it made.

Read from what the runner records: RUN/.stages/<stage>/started (the start, to the microsecond) and its manifest
(`seconds`, `command`), and the run's LLM cache (RUN/cache/llm.sqlite), whose rows carry their cost and the time
they were stored: a call belongs to the stage that was running when it was stored.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from longsift.report.markup import Html, table, tag
from longsift.report.names import STATE_DIR, stage_manifests

RUN_CACHE = Path("cache") / "llm.sqlite"


@dataclass(frozen=True)
class StageTime:
    name: str
    command: str
    started: float | None
    seconds: float | None
    calls: int
    failed_calls: int
    tokens: int
    cost: float | None  # None: some call had no known price
    unpriced: int


def _started(run_dir: Path, name: str) -> float | None:
    try:
        return float((run_dir / STATE_DIR / name / "started").read_text())
    except (OSError, ValueError):
        return None


def _calls(run_dir: Path) -> list[tuple[float, str, int, float | None]]:
    """(stored at, status, tokens, cost) of every call in the run's cache; none without one."""
    path = run_dir / RUN_CACHE
    if not path.is_file():
        return []
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            rows = db.execute("SELECT updated_at, status, COALESCE(prompt_tokens, 0) + COALESCE(completion_tokens, 0),"
                              " cost FROM calls").fetchall()  # fmt: skip
    except sqlite3.Error:
        return []
    return [(float(at), str(status), int(tokens or 0), cost) for at, status, tokens, cost in rows]


def timeline(run_dir: Path) -> list[StageTime]:
    run_dir = Path(run_dir)
    calls = _calls(run_dir)
    records = stage_manifests(run_dir)
    starts = {name: _started(run_dir, name) for name in records}
    stages = []
    for name, record in records.items():
        started = starts[name]
        mine = []
        if started is not None and record.seconds is not None:
            later = [s for s in starts.values() if s is not None and s > started]
            end = min([started + record.seconds + 0.5, *later])  # the stored time can trail the manifest's end
            mine = [c for c in calls if started <= c[0] < end]
        ok = [c for c in mine if c[1] == "ok"]
        unpriced = sum(1 for c in ok if c[3] is None)
        cost = None if unpriced else sum(float(c[3] or 0.0) for c in ok)
        stages.append(StageTime(name, record.command, started, record.seconds, len(mine),
                                len(mine) - len(ok), sum(c[2] for c in mine), cost, unpriced))  # fmt: skip
    return stages


def cost_text(stage: StageTime) -> str:
    if not stage.calls:
        return "no LLM calls"
    if stage.cost is None:
        return f"unknown price ({stage.unpriced} calls without one)"
    return f"${stage.cost:.4f}"


def wall_text(stage: StageTime) -> str:
    return "not recorded" if stage.seconds is None else f"{stage.seconds:,.1f} s"


def timeline_table(run: Path, id_: str | None = None) -> Html:
    stages = timeline(run)
    if not stages:
        return tag("p", "No stage manifests: this run was not made by `longsift run`.", class_="absent")
    first = min((s.started for s in stages if s.started is not None), default=None)
    rows = [[s.name, s.command, "not recorded" if s.started is None or first is None else f"+{s.started - first:.1f} s",
             wall_text(s), f"{s.calls:,}" + (f" ({s.failed_calls:,} failed)" if s.failed_calls else ""),
             f"{s.tokens:,}", cost_text(s)] for s in stages]  # fmt: skip
    total = sum(s.seconds or 0.0 for s in stages)
    known = [s.cost for s in stages if s.calls]
    cost = (
        "no LLM calls" if not known else ("unknown price" if None in known else f"${sum(c or 0.0 for c in known):.4f}")
    )
    rows.append(["all stages", "", "", f"{total:,.1f} s", f"{sum(s.calls for s in stages):,}",
                 f"{sum(s.tokens for s in stages):,}", cost])  # fmt: skip
    header = ["Stage", "Kind", "Started", "Wall time", "LLM calls", "Tokens", "LLM cost"]
    return table(header, rows, class_="timeline", id=id_)
