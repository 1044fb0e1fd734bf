"""Alpaca layout: {"instruction", "input", "output"} (JSON array or JSON lines)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any

from longsift.errors import DataError
from longsift.formats.schema import FastPath, metadata_of, record_id, text_field
from longsift.formats.strict import decoder_for
from longsift.outputs import atomic_output, finite, lone_surrogate, record_error
from longsift.records import Example

NAME = "alpaca"
KEYS = frozenset({"instruction", "output"})
_KNOWN = {"instruction", "input", "output", "id"}

# The Stanford Alpaca preambles, flattened onto one line as in the paper's FastChat files.
PREAMBLE = "Below is an instruction that describes a task. Write a response that appropriately completes the request."
PREAMBLE_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request."
)


def parse(data: dict[str, Any], row: int, source: str) -> Example:
    instruction = text_field(data, "instruction", allow_empty=False)
    input_text = text_field(data, "input", required=False)
    output = text_field(data, "output", allow_empty=False)
    example = Example.from_alpaca(instruction, input_text, output, id=record_id(data, row), row=row, source=source)
    extra = metadata_of(data, _KNOWN)
    return example.with_metadata(**extra) if extra else example


def fast_response(data: dict[str, Any]) -> str | None:
    """The response when `parse` would certainly accept `data`, else None (then `parse` says why).

    Selection's hot loop: the same checks as `parse`, without building an Example.
    """
    output, instruction = data.get("output"), data.get("instruction")
    if type(output) is not str or type(instruction) is not str or not output or not instruction:
        return None
    if output.isspace() or instruction.isspace():  # as `not text.strip()`, without copying the text
        return None
    input_text = data.get("input")
    if input_text is not None and type(input_text) is not str:
        return None
    rid = data.get("id")
    if rid is not None and not isinstance(rid, str | int):
        return None
    return output


def response_decoder(sample: dict[str, Any]) -> Callable[[bytes], Any]:
    """A strict decoder of lines shaped like `sample` (which `fast_response` accepts): `decode(line)` raises, or
    its `response` is the output when `parse` would certainly accept the record, unless it or `prompt` (the
    instruction) is all whitespace (`FastPath.decoder` says why the caller checks that). Empty fields and
    records with an `id` field are refused: their duplicates are checked elsewhere."""
    import msgspec

    filled = Annotated[str, msgspec.Meta(min_length=1)]  # checked in C, not by a Python callback per row
    known = [("prompt", filled, msgspec.field(name="instruction")), ("response", filled, msgspec.field(name="output")),
             ("input", str | None, None)]  # fmt: skip
    return decoder_for("AlpacaLine", known, {k: v for k, v in sample.items() if k != "id"})


FAST: FastPath | None = FastPath(fast_response, response_decoder)


def to_alpaca(example: Example) -> dict[str, Any]:
    meta = {k: v for k, v in example.metadata.items() if k not in ("instruction", "input", "source_keys")}
    return {"instruction": example.instruction, "input": example.input, "output": example.response, **meta}


def write(records: Iterable[Example], path: Path) -> int:
    """A JSON array with indent 4, as the Alpaca release and json.dump(indent=4) write it."""
    return write_json_array(records, path, to_alpaca)


def write_json_array(
    items: Iterable[Any], path: Path, to_item: Callable[[Example], dict[str, Any]] | None = None
) -> int:
    """Streams `json.dump(list(items), f, indent=4)` byte for byte, without holding the list, into a temporary
    file renamed onto `path` when complete. With `to_item`, `items` are Examples (an error names their source
    row). NaN and infinities are written as null (json.dump would write invalid JSON)."""
    count = 0
    with atomic_output(path, "w") as handle:
        for record in items:
            item = to_item(record) if to_item is not None else record
            handle.write("[\n    " if count == 0 else ",\n    ")
            handle.write(_dumps(item, record if to_item is not None else None, count, path).replace("\n", "\n    "))
            count += 1
        handle.write("\n]" if count else "[]")
    return count


def _dumps(item: dict[str, Any], example: Example | None, index: int, path: Path) -> str:
    try:
        text = json.dumps(item, indent=4, allow_nan=False)
    except ValueError:  # NaN or an infinity
        text = json.dumps(finite(item), indent=4)
    except TypeError as exc:
        raise _error(item, example, index, path, exc) from None
    if "\\ud" in text and lone_surrogate(item) is not None:  # json.dumps escapes lone surrogates silently
        raise _error(item, example, index, path)
    return text


def _error(
    item: dict[str, Any], example: Example | None, index: int, path: Path, exc: Exception | None = None
) -> DataError:
    if example is not None:
        return record_error(example.source, example.row, path, item, exc)
    return record_error(f"record {index + 1} (id {item.get('id')!r})", None, path, item, exc)
