"""Stage manifests: what a stage ran with (resolved options, input hashes, versions) and what it produced.

A stage is skipped on a rerun when its manifest says complete and the options and inputs are unchanged.
The manifest is written last and atomically, so a stage that died has none and runs again.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from longsift.provenance import library_versions, sha256_of

MANIFEST = "manifest.json"
VERSIONED = ("torch", "transformers", "trl", "peft", "datasets", "nltk", "httpx")


def input_digests(options: Any) -> dict[str, str]:
    """Hashes of every existing path named in the options: the inputs whose change must rerun a stage."""
    found: dict[str, str] = {}
    for value in _strings(options):
        if len(value) < 4096 and (os.sep in value or value.endswith((".json", ".jsonl", ".gz", ".parquet"))):
            path = Path(value)
            if path.exists():
                found[value] = sha256_of(path) or ""
    return found


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def versions() -> dict[str, str | None]:
    return library_versions(VERSIONED)


def options_digest(uses: str, options: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps({"uses": uses, "options": options}, option=orjson.OPT_SORT_KEYS)).hexdigest()


def read_manifest(stage_dir: Path) -> dict[str, Any] | None:
    path = stage_dir / MANIFEST
    if not path.is_file():
        return None
    try:
        data = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def write_manifest(stage_dir: Path, record: dict[str, Any]) -> None:
    stage_dir.mkdir(parents=True, exist_ok=True)
    tmp = stage_dir / (MANIFEST + ".tmp")
    tmp.write_bytes(orjson.dumps({**record, "finished_at": time.time()}, option=orjson.OPT_INDENT_2, default=str))
    tmp.replace(stage_dir / MANIFEST)


def is_current(manifest: dict[str, Any] | None, digest: str, inputs: dict[str, str]) -> bool:
    return (
        manifest is not None
        and manifest.get("status") == "complete"
        and manifest.get("options_digest") == digest
        and manifest.get("inputs") == inputs
    )
