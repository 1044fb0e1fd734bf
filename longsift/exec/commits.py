"""Shards committed as they complete, so that a killed job resumes without redoing a finished shard.

A job's run folder (`OUT.shards/` beside its output) holds one completion marker a shard
(`part-NNNNN.done.json`, written last and atomically: a shard is done exactly when its marker is there). A marker
names the fingerprint of everything that shapes the shard's result: the command, the shard's identity (its name,
size and modification time or ETag), the options, the local files they name (a tokenizer, a model: each file's size
and modification time) and longsift's version. A rerun takes a shard as done only when its marker carries the
fingerprint the rerun would write; a changed input or option recomputes the shard. Markers are JSON (nothing read
back is unpickled). Used by score/refine (exec/ray_passes.py) and select (exec/ray_select.py).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import orjson

from longsift.outputs import side_path, write_bytes

# What fsspec's file systems report that changes when a file's bytes do (local and memory: mtime or created;
# object stores: their ETag or last-modified time; the Hugging Face hub: the blob's id).
CHANGES = ("mtime", "created", "ETag", "etag", "LastModified", "last_modified", "updated", "blob_id", "md5Hash")


def work_folder(output: Path) -> Path:
    """Where a job's shards are committed: `OUT.shards/` beside the output."""
    return side_path(output, "shards")


def marker_path(work: Path, index: int, name: str = "done") -> Path:
    return work / f"part-{index:05d}.{name}.json"


def identity(shard: str) -> dict[str, Any]:
    """The shard as a marker knows it: its name, size and what its file system says changes with its bytes."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(shard)
    info = fs.info(path)
    return {"shard": shard, "size": int(info.get("size") or 0),
            **{key: str(info[key]) for key in CHANGES if info.get(key) is not None}}  # fmt: skip


def local_files(path: str | None) -> list[tuple[str, int, int]] | None:
    """A local file or folder named by an option (a tokenizer, a model) as (file, size, mtime): edited in place, it
    is another input. A hub id, or nothing: None (the id itself is in the options)."""
    if not path or not os.path.exists(path):
        return None
    if os.path.isfile(path):
        found = [path]
    else:
        found = sorted(os.path.join(folder, name) for folder, _, names in os.walk(path) for name in names)
    return [(os.path.relpath(f, path), (s := os.stat(f)).st_size, s.st_mtime_ns) for f in found]


def fingerprint(**what: Any) -> str:
    """sha256 of `what` (JSON, keys sorted; values JSON cannot hold by their text) and longsift's version."""
    from longsift import __version__

    blob = orjson.dumps({**what, "longsift": __version__}, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(blob).hexdigest()


def done_marker(work: Path, index: int, expected: str, name: str = "done") -> dict[str, Any] | None:
    """The shard's marker when it is this job's (its fingerprint is `expected`); else None: the shard is to run."""
    path = marker_path(work, index, name)
    if not path.is_file():
        return None
    try:
        marker = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError:  # not one of ours (ours are written whole): the shard runs again
        return None
    return marker if isinstance(marker, dict) and marker.get("fingerprint") == expected else None


def commit(work: Path, index: int, marker: dict[str, Any], name: str = "done") -> None:
    """The shard is done: its marker, written whole or not at all (after everything it names)."""
    write_bytes(marker_path(work, index, name), orjson.dumps(marker))
