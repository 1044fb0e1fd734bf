"""ShareGPT / FastChat layout: {"id", "conversations": [{"from": "human"|"gpt"|"system", "value"}]}.

The paper's files put the Alpaca preamble inside the human turn; the reader recognises it and keeps the
bare instruction and input, and the writer puts it back. A record keeps its own id, its extra keys and their
order (the LIMA file has `score` before `conversations`, the Alpaca files after), so the paper's released
files round-trip byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from longsift.formats.alpaca import PREAMBLE, PREAMBLE_WITH_INPUT, write_json_array
from longsift.formats.schema import FastPath, RecordError, checked_messages, message, metadata_of, record_id
from longsift.records import Example, Message

NAME = "sharegpt"
KEYS = frozenset({"conversations"})
_KNOWN = {"id", "conversations"}
# metadata key holding the source record's keys in order, kept only when the default layout below differs
SOURCE_KEYS = "source_keys"
_DEFAULT_EXTRAS = ("score",)  # written after `conversations` when the record has no source_keys
SPEAKERS = {
    "human": "user", "user": "user",
    "gpt": "assistant", "assistant": "assistant", "chatgpt": "assistant", "bard": "assistant",
    "bing": "assistant", "model": "assistant",
    "system": "system",
}  # fmt: skip
_INSTRUCTION = " ### Instruction: "
_INPUT = " ### Input: "

# no hot-loop shortcut: turns are checked one by one, and the paper's files carry their own ids
FAST: FastPath | None = None


def parse(data: dict[str, Any], row: int, source: str) -> Example:
    turns = data.get("conversations")
    if not isinstance(turns, list) or not turns:
        raise RecordError("field 'conversations' must be a non-empty list")
    messages = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise RecordError(f"conversations[{i}] must be an object")
        speaker = turn.get("from")
        role = SPEAKERS.get(speaker) if isinstance(speaker, str) else None
        if role is None:
            raise RecordError(f"conversations[{i}]: unknown speaker {speaker!r}")
        messages.append(message(role, turn.get("value"), f"conversations[{i}]"))
    rid = record_id(data, row)
    meta = metadata_of(data, _KNOWN)
    if _default_keys(meta) != list(data):
        meta[SOURCE_KEYS] = list(data)
    messages, alpaca_fields = _strip_alpaca_preamble(messages)
    meta.update(alpaca_fields)
    return Example(rid, checked_messages(messages), source, row, meta)


def _default_keys(metadata: dict[str, Any]) -> list[str]:
    """The keys the writer puts out for a record without source_keys: the paper's Alpaca/Evol layout."""
    return ["id", "conversations", *(k for k in _DEFAULT_EXTRAS if k in metadata)]


def _strip_alpaca_preamble(messages: list[Message]) -> tuple[list[Message], dict[str, str]]:
    first = next((i for i, m in enumerate(messages) if m.role == "user"), None)
    if first is None:
        return messages, {}
    text = messages[first].content
    for preamble, has_input in ((PREAMBLE_WITH_INPUT, True), (PREAMBLE, False)):
        head = preamble + _INSTRUCTION
        if not text.startswith(head):
            continue
        body = text[len(head) :]
        instruction, _, input_text = body.partition(_INPUT) if has_input else (body, "", "")
        if has_input and not input_text:  # the writer could not tell it from the no-input preamble: keep as is
            return messages, {}
        user = f"{instruction}\n\n{input_text}" if input_text else instruction
        messages = [*messages[:first], Message("user", user), *messages[first + 1 :]]
        return messages, {"instruction": instruction, "input": input_text}
    return messages, {}


def paper_prompt(instruction: str, input_text: str) -> str:
    """The paper's human turn: the Alpaca preamble on one line, no '### Response:'."""
    if input_text:
        return f"{PREAMBLE_WITH_INPUT}{_INSTRUCTION}{instruction}{_INPUT}{input_text}"
    return f"{PREAMBLE}{_INSTRUCTION}{instruction}"


def to_fastchat(example: Example) -> dict[str, Any]:
    turns = []
    first_user = True
    for m in example.messages:
        value = m.content
        if m.role == "user" and first_user:
            first_user = False
            if "instruction" in example.metadata:
                value = paper_prompt(example.instruction, example.input)
        turns.append({"from": {"user": "human", "assistant": "gpt", "system": "system"}[m.role], "value": value})
    meta = example.metadata
    keys = meta.get(SOURCE_KEYS) or _default_keys(meta)
    item: dict[str, Any] = {} if "id" in keys else {"id": fastchat_id(example)}
    for key in keys:
        if key == "id":
            item["id"] = fastchat_id(example)
        elif key == "conversations":
            item["conversations"] = turns
        elif key in meta:
            item[key] = meta[key]
    for key in _DEFAULT_EXTRAS:  # e.g. a score added by a later stage
        if key in meta and key not in item:
            item[key] = meta[key]
    return item


def fastchat_id(example: Example) -> str:
    """The record's own id; `identity_<source row>` (the paper's naming) for records whose source had none."""
    if example.row >= 0 and example.id == str(example.row):
        return f"identity_{example.row}"
    return example.id


def write(records: Iterable[Example], path: Path) -> int:
    """The paper's released layout: a JSON array, indent 4, ASCII escapes, no final newline (json.dump)."""
    return write_json_array(records, path, to_fastchat)
