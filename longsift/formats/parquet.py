"""Parquet writer: the `messages` layout as columns; metadata as a JSON string (its keys vary by row)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import orjson

from longsift.formats.messages import to_messages
from longsift.records import Example

BATCH = 4096


def write(records: Iterable[Example], path: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([
        ("id", pa.string()),
        ("messages", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
        ("source", pa.string()),
        ("row", pa.int64()),
        ("metadata", pa.string()),
    ])  # fmt: skip
    count = 0
    with pq.ParquetWriter(path, schema) as writer:
        batch: list[dict[str, object]] = []
        for record in records:
            data = to_messages(record)
            data["metadata"] = orjson.dumps(data["metadata"]).decode()
            batch.append(data)
            if len(batch) >= BATCH:
                writer.write_table(pa.Table.from_pylist(batch, schema))
                count += len(batch)
                batch = []
        if batch or count == 0:
            writer.write_table(pa.Table.from_pylist(batch, schema))
            count += len(batch)
    return count
