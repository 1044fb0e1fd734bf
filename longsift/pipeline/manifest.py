"""Stage manifests: what a stage ran with (resolved options, input hashes, versions) and what it produced.

A stage is skipped on a rerun when its manifest says complete and the options and inputs are unchanged.
The manifest is written last and atomically, so a stage that died has none and runs again.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

MANIFEST = "manifest.json"
VERSIONED = ("longsift", "torch", "transformers", "trl", "peft", "datasets", "nltk", "httpx")


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def path_digest(path: Path) -> str:
    """Content hash of a file, or of every file under a folder (names included)."""
    if path.is_file():
        return file_digest(path)
    digest = hashlib.sha256()
    for child in sorted(p for p in path.rglob("*") if p.is_file() and p.name != MANIFEST):
        digest.update(str(child.relative_to(path)).encode())
        digest.update(file_digest(child).encode())
    return digest.hexdigest()


def input_digests(options: Any) -> dict[str, str]:
    """Hashes of every existing path named in the options: the inputs whose change must rerun a stage."""
    found: dict[str, str] = {}
    for value in _strings(options):
        if len(value) < 4096 and (os.sep in value or value.endswith((".json", ".jsonl", ".gz", ".parquet"))):
            path = Path(value)
            if path.exists():
                found[value] = path_digest(path)
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
    found: dict[str, str | None] = {}
    for name in VERSIONED:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


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
