"""What a record layout (schema) module provides (`Schema`), and the checks they share."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from longsift.records import ROLES, Example, Message


@dataclass(frozen=True)
class FastPath:
    """A layout's shortcut for selection's hot loop (longsift/select/blocks.py): a record's one response
    without building an Example."""

    # the response when `parse` would certainly accept the decoded record, else None (then `parse` says why)
    response: Callable[[dict[str, Any]], str | None]
    # a strict typed decoder of lines shaped like a sample record (longsift/formats/strict.py), or None:
    # `make(sample)(line)` raises (then `response` and `parse` judge the line), or its `response` is the
    # response unless it or its `prompt` is blank (`decoded_response`): a check in the loop costs a third of
    # a per-row Python callback in the decoder
    decoder: Callable[[dict[str, Any]], Callable[[bytes], Any]] | None = None


def decoded_response(decoded: Any) -> str | None:
    """The response of a record a `FastPath.decoder` accepted, or None when a required text is blank (the hot
    loops inline this test)."""
    text = decoded.response
    return None if text.isspace() or decoded.prompt.isspace() else text


@runtime_checkable
class Schema(Protocol):
    """A record layout: a module with these names (alpaca.py, sharegpt.py, messages.py; tests check each)."""

    @property
    def NAME(self) -> str: ...

    @property
    def KEYS(self) -> frozenset[str]:
        """The fields that identify the layout."""
        ...

    @property
    def FAST(self) -> FastPath | None:
        """The hot-loop shortcut, or None: every record is parsed."""
        ...

    def parse(self, data: dict[str, Any], row: int, source: str) -> Example: ...

    def write(self, records: Iterable[Example], path: Path) -> int: ...


class RecordError(ValueError):
    """A record that cannot become an Example; the message is the reason shown to the user."""


def text_field(data: dict[str, Any], key: str, *, required: bool = True, allow_empty: bool = True) -> str:
    if key not in data or data[key] is None:
        if required:
            raise RecordError(f"missing field {key!r}")
        return ""
    value = data[key]
    if not isinstance(value, str):
        raise RecordError(f"field {key!r} must be a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise RecordError(f"field {key!r} is empty")
    return value


def checked_messages(messages: list[Message]) -> tuple[Message, ...]:
    if not any(m.role == "user" for m in messages):
        raise RecordError("no user turn")
    assistant = [m for m in messages if m.role == "assistant"]
    if not assistant:
        raise RecordError("no assistant turn (missing response)")
    if not all(m.content.strip() for m in assistant):
        raise RecordError("empty response")
    return tuple(messages)


def message(role: Any, content: Any, where: str) -> Message:
    if role not in ROLES:
        raise RecordError(f"{where}: unknown role {role!r} (expected system, user or assistant)")
    if not isinstance(content, str):
        raise RecordError(f"{where}: content must be a string, got {type(content).__name__}")
    return Message(role, content)


def metadata_of(data: dict[str, Any], known: set[str]) -> dict[str, Any]:
    """Fields we do not model are kept, so a round trip loses nothing."""
    return {k: v for k, v in data.items() if k not in known}


def has_own_id(data: dict[str, Any]) -> bool:
    return data.get("id") not in (None, "")


def record_id(data: dict[str, Any], row: int) -> str:
    """The file's own id when it has one (then duplicates are an error), else the row number."""
    if not has_own_id(data):
        return str(row)
    value = data["id"]
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise RecordError(f"field 'id' must be a string or integer, got {type(value).__name__}")
    return str(value)
