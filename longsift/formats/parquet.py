"""Parquet writers: the `messages` layout as columns (see formats.arrow for the schema), as one file or as a
folder of shards (`--output-format parquet-shards`)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from longsift.errors import DataError
from longsift.formats.arrow import _row, arrow_schema
from longsift.formats.messages import to_messages
from longsift.outputs import atomic_output, record_error
from longsift.records import Example

if TYPE_CHECKING:
    import pyarrow as pa

BATCH_ROWS = 4096
SHARD_NAME = "part-{:05d}.parquet"  # the files of --output-format parquet-shards, in record order


def write(records: Iterable[Example], path: Path) -> int:
    """Row groups of BATCH_ROWS records, into a temporary file renamed onto `path` when complete."""
    import pyarrow.parquet as pq

    count = 0
    with atomic_output(path) as handle, pq.ParquetWriter(handle, arrow_schema()) as writer:
        rows = iter(records)
        while batch := tuple(islice(rows, BATCH_ROWS)):
            writer.write_table(_table(batch, path))
            count += len(batch)
    return count


def _table(batch: Sequence[Example], path: Path) -> pa.Table:
    """One Arrow table; a record that Arrow or JSON cannot hold is named (source row, field) instead."""
    import pyarrow as pa

    rows = []
    for record in batch:
        try:
            rows.append(_row(record))
        except TypeError as exc:  # the metadata column is JSON: bytes, lone surrogates
            raise record_error(record.source, record.row, path, to_messages(record), exc) from None
    try:
        return pa.Table.from_pylist(rows, arrow_schema())
    except (UnicodeError, pa.ArrowException) as exc:
        raise _first_bad(batch, rows, path, exc) from None


def _first_bad(batch: Sequence[Example], rows: list[dict[str, Any]], path: Path, exc: Exception) -> Exception:
    import pyarrow as pa

    for record, row in zip(batch, rows, strict=True):
        try:
            pa.Table.from_pylist([row], arrow_schema())
        except (UnicodeError, pa.ArrowException) as own:
            return record_error(record.source, record.row, path, to_messages(record), own)
    return exc


SHARD_ROWS = 100_000  # records a shard: files of tens of MB, that Ray Data, Spark and `datasets` read in parallel


def write_shards(records: Iterable[Example], path: Path) -> int:
    """A folder of Parquet shards (part-00000.parquet, ... of SHARD_ROWS records each, in record order), written
    whole or not at all: into a temporary folder beside `path`, renamed onto it when every shard is complete (a
    previous run's folder is replaced, never mixed with this one's)."""
    import shutil
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not path.is_dir():
        raise DataError(str(path), "--output-format parquet-shards writes a folder; this is a file")
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    count = index = 0
    try:
        rows = iter(records)
        while batch := tuple(islice(rows, SHARD_ROWS)):
            write(batch, staging / SHARD_NAME.format(index))
            count, index = count + len(batch), index + 1
        if index == 0:
            write((), staging / SHARD_NAME.format(0))  # an empty selection is one empty shard, with the schema
        old = path.with_name(f".{path.name}.old.{os.getpid()}")
        if path.exists():
            path.rename(old)
        staging.rename(path)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return count
