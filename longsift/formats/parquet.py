"""Parquet writer: the `messages` layout as columns (see formats.arrow for the schema)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from longsift.formats.arrow import arrow_schema, iter_arrow_batches
from longsift.records import Example


def write(records: Iterable[Example], path: Path) -> int:
    import pyarrow.parquet as pq

    count = 0
    with pq.ParquetWriter(path, arrow_schema()) as writer:
        for table in iter_arrow_batches(records):
            writer.write_table(table)
            count += table.num_rows
    return count
