"""Examples <-> Arrow tables and Hugging Face `datasets` (the columns TRL's conversational format expects).

Metadata keys differ from row to row, so it travels as one JSON string column rather than a struct.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import orjson

from longsift.errors import MissingDependencyError
from longsift.formats.messages import to_messages
from longsift.records import Example

if TYPE_CHECKING:
    import datasets
    import pyarrow as pa


def arrow_schema() -> pa.Schema:
    import pyarrow as pa

    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    return pa.schema([
        ("id", pa.string()),
        ("messages", pa.list_(message)),
        ("source", pa.string()),
        ("row", pa.int64()),
        ("metadata", pa.string()),
    ])  # fmt: skip


def _row(example: Example) -> dict[str, Any]:
    data = to_messages(example)
    data["metadata"] = orjson.dumps(data["metadata"]).decode()
    return data


def to_arrow(records: Iterable[Example]) -> pa.Table:
    import pyarrow as pa

    return pa.Table.from_pylist([_row(r) for r in records], arrow_schema())


def _example(data: dict[str, Any]) -> Example:
    metadata = data.get("metadata") or {}
    if isinstance(metadata, str):
        metadata = orjson.loads(metadata)
    return Example.from_dict({**data, "metadata": metadata})


def from_arrow(table: pa.Table) -> Iterator[Example]:
    for batch in table.to_batches():
        for data in batch.to_pylist():
            yield _example(data)


def to_hf_dataset(records: Iterable[Example]) -> datasets.Dataset:
    try:
        import datasets
    except ImportError as exc:
        raise MissingDependencyError("datasets", "hf", "converting to a Hugging Face dataset") from exc
    return datasets.Dataset(to_arrow(records))


def from_hf_dataset(dataset: datasets.Dataset) -> Iterator[Example]:
    for data in dataset:
        yield _example(dict(data))
