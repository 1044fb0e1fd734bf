"""Parquet writer: the `messages` layout as columns (see formats.arrow for the schema)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from longsift.formats.arrow import _row, arrow_schema
from longsift.formats.messages import to_messages
from longsift.outputs import atomic_output, record_error
from longsift.records import Example

if TYPE_CHECKING:
    import pyarrow as pa

BATCH_ROWS = 4096


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
