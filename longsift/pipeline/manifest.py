"""The runner's decisions on a stage's manifest (the schema itself is `longsift.manifest`).

A stage's manifest lives in RUN/.stages/<stage>/manifest.json, its `files` relative to the run folder. The runner
deletes it before the stage starts, so a stage that died has none and runs again. A stage is done only when its
manifest is one of the current schema, names the same stage kind, options and inputs, and its outputs verify
(`longsift.manifest.verify`: sizes, then hashes where the stat fields changed). An older manifest is not
current: the stage runs again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from longsift.manifest import MANIFEST, Input, Manifest, json_options, read_manifest, verify

__all__ = ["MANIFEST", "forget", "not_current", "read_stage", "stage_manifest"]


def stage_manifest(state_dir: Path) -> Path:
    return state_dir / MANIFEST


def read_stage(state_dir: Path) -> Manifest | None:
    return read_manifest(stage_manifest(state_dir))


def forget(state_dir: Path) -> None:
    """A stage about to run is not done until it finishes: drop its manifest first."""
    stage_manifest(state_dir).unlink(missing_ok=True)


def not_current(
    previous: Manifest | None, uses: str, options: dict[str, Any], inputs: list[Input], run_dir: Path, state_dir: Path
) -> str | None:
    """Why the stage must run (None: it is done and its outputs are as recorded)."""
    if previous is None:
        return "no manifest of the current schema"
    if previous.command != uses or previous.options != json_options(options):
        return "its options changed"
    if previous.inputs != inputs:
        changed = sorted({i.role for i in previous.inputs} ^ {i.role for i in inputs}) or sorted(
            {i.role for i in inputs if i not in previous.inputs}
        )
        return f"its inputs changed ({', '.join(changed)})"
    return verify(previous, run_dir, stage_manifest(state_dir))
