"""Load any instruction corpus into Examples, and write Examples in the formats the ecosystem reads.

A source is a container (JSON lines, JSON array, Parquet, HF dataset; gzip allowed) holding records in
one layout (alpaca, sharegpt, messages). Both are detected; either can be forced. A new layout is one
module satisfying `schema.Schema` (NAME, KEYS, FAST, parse(), write()), plus one line in SCHEMAS.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol

from longsift.errors import DataError, UnknownFormatError
from longsift.formats import rows
from longsift.formats.rows import RawRow
from longsift.formats.schema import Schema
from longsift.records import Example
from longsift.registry import Registry

SCHEMAS: Registry[Schema] = Registry("record layout")
SCHEMAS.register("alpaca", "longsift.formats.alpaca")
SCHEMAS.register("sharegpt", "longsift.formats.sharegpt")
SCHEMAS.register("fastchat", "longsift.formats.sharegpt")
SCHEMAS.register("messages", "longsift.formats.messages")


class Writer(Protocol):
    def __call__(self, records: Iterable[Example], path: Path) -> int: ...


WRITERS: Registry[Writer] = Registry("output format")
WRITERS.register("alpaca", "longsift.formats.alpaca:write")
WRITERS.register("fastchat", "longsift.formats.sharegpt:write")
WRITERS.register("sharegpt", "longsift.formats.sharegpt:write")
WRITERS.register("messages", "longsift.formats.messages:write")
WRITERS.register("parquet", "longsift.formats.parquet:write")
WRITERS.register("parquet-shards", "longsift.formats.parquet:write_shards")  # a folder of part-NNNNN.parquet

CONTAINERS = ("jsonl", "json", "parquet", "hf")
READ_FORMATS = (*SCHEMAS.names(), *CONTAINERS)
_BY_EXTENSION = {".jsonl": "messages", ".parquet": "parquet", ".json": "alpaca"}


def output_format(path: Path, format: str | None = None) -> str:
    """The writer for `path`: explicit, else by extension (.jsonl messages, .json alpaca, .parquet)."""
    if format:
        WRITERS.get(format)  # fail early, with suggestions
        return format
    suffix = rows.inner_suffix(path)
    if suffix not in _BY_EXTENSION:
        raise UnknownFormatError(str(path), f"cannot tell the output format from {suffix!r}; pass --output-format")
    return _BY_EXTENSION[suffix]


def write(records: Iterable[Example], path: str | Path, format: str | None = None) -> int:
    """Write records; returns how many were written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return WRITERS.get(output_format(path, format))(records, path)


def container_of(source: str, format: str | None = None, opened: rows.Opened | None = None) -> str:
    """jsonl, json (an array), parquet or hf, from the suffix and the first bytes; a clear error otherwise.
    `opened`: the handle the file will be read through (its first bytes are already in memory)."""
    if format in CONTAINERS:
        return format
    path = Path(source)
    if path.is_dir():
        return "hf"
    if not path.exists():
        if _looks_like_hub_id(source):
            return "hf"
        raise DataError(source, "no such file or directory")
    suffix = rows.inner_suffix(path)
    if suffix == ".parquet":
        return "parquet"
    if opened is not None:
        return rows.sniff(opened, jsonl=suffix == ".jsonl")
    with rows.Opened(path) as probe:
        return rows.sniff(probe, jsonl=suffix == ".jsonl")


def _looks_like_hub_id(source: str) -> bool:
    """org/name, without a data file's suffix (a missing `data/x.jsonl` is a missing file, not a dataset)."""
    suffix = rows.inner_suffix(Path(source))
    plain = not source.startswith((".", "/", "~")) and source.count("/") == 1
    return plain and suffix not in (".json", ".jsonl", ".parquet", ".gz", ".csv", ".txt")


def iter_raw_rows(
    source: str, container: str, split: str = "train", limits: rows.Limits | None = None,
    opened: rows.Opened | None = None,
) -> Iterator[RawRow]:  # fmt: skip
    """Every row of `source`, located, read through one handle (`opened`, closed at the end; or a new one)."""
    limits = limits or rows.Limits()
    if container == "hf":
        return rows.iter_hf(source, split)
    return _rows_of_file(Path(source), container, limits, opened)


def _rows_of_file(path: Path, container: str, limits: rows.Limits, given: rows.Opened | None) -> Iterator[RawRow]:
    with given or rows.Opened(path, limits) as opened:
        if container == "parquet":
            yield from rows.iter_parquet(opened)
        else:
            yield from rows.iter_text(opened, container)


def schema_for(data: dict[str, object], source: str) -> Schema:
    for name in ("messages", "sharegpt", "alpaca"):
        module = SCHEMAS.get(name)
        if data.keys() >= module.KEYS:
            return module
    raise UnknownFormatError(
        source,
        f"unknown record layout with fields {sorted(data)[:12]}: expected alpaca (instruction/input/output), "
        "sharegpt (conversations) or messages (messages)",
    )
