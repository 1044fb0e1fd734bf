"""Chat `messages` JSON lines: TRL's conversational format plus our fields, one object a line.

{"id": str, "messages": [{"role": "system"|"user"|"assistant", "content": str}, ...],
 "source": str, "row": int, "metadata": {...}}
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from longsift.formats.schema import FastPath, RecordError, checked_messages, message, record_id
from longsift.outputs import atomic_output, record_error
from longsift.records import Example

NAME = "messages"
KEYS = frozenset({"messages"})

FAST: FastPath | None = None  # no hot-loop shortcut: conversations are checked turn by turn


def parse(data: dict[str, Any], row: int, source: str) -> Example:
    turns = data.get("messages")
    if not isinstance(turns, list) or not turns:
        raise RecordError("field 'messages' must be a non-empty list")
    messages = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise RecordError(f"messages[{i}] must be an object")
        messages.append(message(turn.get("role"), turn.get("content"), f"messages[{i}]"))
    rid = record_id(data, row)
    metadata = data.get("metadata") or {}
    if isinstance(metadata, str):  # Parquet keeps metadata as a JSON string column
        metadata = orjson.loads(metadata)
    if not isinstance(metadata, dict):
        raise RecordError("field 'metadata' must be an object")
    keep_row = data.get("row")
    original_row = keep_row if isinstance(keep_row, int) and keep_row >= 0 else row
    origin = data.get("source") if isinstance(data.get("source"), str) else source
    return Example(rid, checked_messages(messages), origin or source, original_row, metadata)


def to_messages(example: Example) -> dict[str, Any]:
    return example.to_dict()


def write(records: Iterable[Example], path: Path) -> int:
    """One JSON object a line, into a temporary file renamed onto `path` when complete (NaN is written as null)."""
    count = 0
    with atomic_output(path) as handle:
        for record in records:
            data = to_messages(record)
            try:
                handle.write(orjson.dumps(data) + b"\n")
            except TypeError as exc:  # orjson.JSONEncodeError: bytes, a lone surrogate, an integer over 64 bits
                raise record_error(record.source, record.row, path, data, exc) from None
            count += 1
    return count
