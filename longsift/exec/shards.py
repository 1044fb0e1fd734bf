"""A sharded input: a folder, a glob, a list of files, or `@FILE` (one shard a line), on local disk or any
fsspec URL (s3://, gs://, hf://, file://, memory://). Shards are ordered by name (a list: as given); the pool's
rows are the shards' rows one after the other, so row numbers, ties and ids are those of the concatenation.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from longsift.errors import DataError

SHARD_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".parquet")


def is_url(path: str) -> bool:
    return "://" in path


def expand(source: str | Path | Sequence[str | Path]) -> list[str]:
    """The shards of `source`, in pool order; a clear error when there are none."""
    if isinstance(source, str | Path):
        text = str(source)
        if text.startswith("@"):  # a list file: one shard a line
            listed = [line.strip() for line in Path(text[1:]).read_text().splitlines()]
            return expand([line for line in listed if line and not line.startswith("#")])
        found = _expand_one(text)
    else:
        found = [shard for item in source for shard in _expand_one(str(item))]
    if not found:
        raise DataError(str(source), f"no shards found (files ending {', '.join(SHARD_SUFFIXES)})")
    return found


def _expand_one(text: str) -> list[str]:
    import fsspec

    fs, root = fsspec.core.url_to_fs(text)
    protocol = text.split("://", 1)[0] + "://" if is_url(text) else ""

    def named(path: str) -> str:
        return str(fs.unstrip_protocol(path)) if protocol and protocol != "file://" else _local(text, path)

    if is_pattern(root):
        return sorted(named(p) for p in fs.glob(root) if _is_shard(p) and not _ours(p, _fixed_part(root)))
    if fs.isdir(root):
        return sorted(named(p) for p in fs.find(root) if _is_shard(p) and not _ours(p, root))
    if not fs.exists(root):
        raise DataError(text, "no such file or directory")
    return [named(root)]


def _local(original: str, path: str) -> str:
    """A local shard keeps the caller's spelling (file:// stays file://), so messages name what was given."""
    return "file://" + path if original.startswith("file://") else path


def is_pattern(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def _fixed_part(pattern: str) -> str:
    """The folder a glob lists below: `data/2024-*/*.jsonl` -> `data`."""
    parts = pattern.split("/")
    return "/".join(parts[: next(i for i, part in enumerate(parts) if is_pattern(part))])


def _is_shard(path: str) -> bool:
    return path.endswith(SHARD_SUFFIXES)


def _ours(path: str, root: str) -> bool:
    """What longsift itself leaves among the shards, never a shard of the pool: a side file (`x.manifest.json`,
    `x.quarantine.jsonl`, `x.failures.jsonl`), a hidden or temporary file (`.longsift-tmp-*`), and whatever is in a
    hidden folder or a job's work folder (`OUT.shards/`, its `part-00000.done.json` markers) below `root`."""
    from longsift.layout import SIDE_FILE_SUFFIXES

    inside = path[len(root.rstrip("/")) :].strip("/").split("/") if path.startswith(root.rstrip("/")) else [path]
    name = inside[-1]
    if name.removesuffix(".gz").endswith(SIDE_FILE_SUFFIXES) or name.startswith("."):
        return True
    return any(folder.startswith(".") or folder.endswith(".shards") for folder in inside[:-1])


@contextlib.contextmanager
def local_copy(shard: str) -> Iterator[str]:
    """A local path holding `shard`'s bytes: the file itself when local, else a temporary copy (the project's
    readers read a local file by offsets; the copy is removed afterwards)."""
    if not is_url(shard):
        yield shard
        return
    if shard.startswith("file://"):
        yield shard.removeprefix("file://")
        return
    import fsspec

    name = Path(shard.split("://", 1)[1]).name
    with tempfile.TemporaryDirectory(prefix="longsift-shard-") as folder:
        target = os.path.join(folder, name)
        with fsspec.open(shard, "rb") as remote, open(target, "wb") as handle:
            while chunk := remote.read(8 << 20):
                handle.write(chunk)
        yield target
