"""Stage manifests: what a stage ran with (resolved options, input hashes, versions) and what it produced.

A manifest lists every file the stage produced (each file of an output folder, temporary files aside) with its
size and sha256, relative to the run folder. It is written atomically and last; the runner deletes it before a
stage starts, so a stage that died has none and runs again.

A stage is done only when its manifest says complete, its options and inputs are unchanged and its outputs match:

- every recorded file exists, as a file, with the recorded size (a different size: rerun, no hashing needed);
- when its size, mtime, ctime and inode all equal the record, the recorded sha256 is trusted (nothing wrote to
  it: even restoring an mtime by hand changes the ctime);
- otherwise the file is hashed again, and a sha256 that differs from the record reruns the stage. When every
  hash matches (a copied run folder), the stat fields of the record are refreshed so the next check is cheap.

Files added to an output folder after the stage finished are not its outputs and are ignored.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from longsift.errors import ConfigError
from longsift.outputs import TEMP_PREFIX, write_bytes
from longsift.provenance import library_versions, sha256_of

MANIFEST = "manifest.json"
VERSIONED = ("torch", "transformers", "trl", "peft", "datasets", "nltk", "httpx")
_CHUNK = 1 << 20


def input_digests(options: Any) -> dict[str, str]:
    """Hashes of every existing path named in the options: the inputs whose change must rerun a stage."""
    return {value: sha256_of(value) or "" for value in input_paths(options)}


def input_paths(options: Any) -> list[str]:
    """The option values that look like paths and exist."""
    found: list[str] = []
    for value in _strings(options):
        looks_like_path = os.sep in value or value.endswith((".json", ".jsonl", ".gz", ".parquet"))
        if looks_like_path and len(value) < 4096 and "\0" not in value and Path(value).exists() and value not in found:
            found.append(value)
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
    except (orjson.JSONDecodeError, OSError):
        return None
    return data if isinstance(data, dict) else None


def write_manifest(stage_dir: Path, record: dict[str, Any]) -> None:
    data = orjson.dumps({"finished_at": time.time(), **record}, option=orjson.OPT_INDENT_2, default=str)
    write_bytes(stage_dir / MANIFEST, data)


def forget(stage_dir: Path) -> None:
    """A stage about to run is not done until it finishes: drop its manifest first."""
    (stage_dir / MANIFEST).unlink(missing_ok=True)


def is_current(manifest: dict[str, Any] | None, digest: str, inputs: dict[str, str]) -> bool:
    return (
        manifest is not None
        and manifest.get("status") == "complete"
        and manifest.get("options_digest") == digest
        and manifest.get("inputs") == inputs
        and _well_formed(manifest)
    )


def _well_formed(manifest: dict[str, Any]) -> bool:
    """A manifest edited by hand into another shape is no proof that the stage is done."""
    outputs, files = manifest.get("outputs"), manifest.get("files")
    return (
        isinstance(outputs, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in outputs.items())
        and isinstance(files, dict)
        and all(isinstance(record, dict) for record in files.values())
    )


# -- what a stage produced -------------------------------------------------------------------------------------


def describe_outputs(run_dir: Path, outputs: dict[str, str]) -> dict[str, dict[str, Any]]:
    """{path relative to the run folder: size, sha256, stat} for every file under the stage's output paths."""
    root = run_dir.resolve()
    files: dict[str, dict[str, Any]] = {}
    for key, value in outputs.items():
        path = Path(value)
        if not path.exists():
            raise ConfigError(f"the stage's output {key!r} ({path}) was not written")
        for file in _files_under(path):
            files[_relative(file, root, key)] = _describe(file)
    return files


def _files_under(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(TEMP_PREFIX))


def _relative(file: Path, root: Path, key: str) -> str:
    resolved = file.resolve()
    if not resolved.is_relative_to(root):
        raise ConfigError(f"the stage's output {key!r} ({file}) is outside the run folder {root}")
    return resolved.relative_to(root).as_posix()


def _describe(file: Path) -> dict[str, Any]:
    return {**_stat(file), "sha256": _sha256(file)}


def _stat(file: Path) -> dict[str, int]:
    st = file.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns, "ino": st.st_ino}


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def output_mismatch(run_dir: Path, stage_dir: Path, manifest: dict[str, Any]) -> str | None:
    """Why the stage's outputs do not match its manifest (None when they all do); see the module docstring."""
    for key, value in (manifest.get("outputs") or {}).items():
        if not Path(value).exists():
            return f"its output {key!r} ({value}) is missing"
    recorded: dict[str, dict[str, Any]] = manifest["files"]
    refreshed: dict[str, dict[str, Any]] = {}
    root = run_dir.resolve()
    for name, record in recorded.items():
        file = run_dir / name
        if not file.resolve().is_relative_to(root):
            return f"its manifest names {name}, outside the run folder"
        if not file.is_file():
            return f"{name} is missing"
        now = _stat(file)
        if now["size"] != record.get("size"):
            return f"{name} changed size ({record.get('size')} -> {now['size']} bytes)"
        if all(now[key] == record.get(key) for key in now):
            continue
        if _sha256(file) != record.get("sha256"):
            return f"{name} changed (sha256 differs from the manifest)"
        refreshed[name] = {**record, **now}
    if refreshed:
        write_manifest(stage_dir, {**manifest, "files": {**recorded, **refreshed}})
    return None
