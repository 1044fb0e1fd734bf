"""What a refine or score prompt is filled with, and how a record that failed is reported.

The paper strips instruction, input and output before filling its prompt; so do we (the stored original is
kept unstripped). Alpaca-shaped records carry their instruction and input in metadata; for other records the
instruction is the user turn before the last answer, and the answer is the last assistant turn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from longsift.records import Example

ANSWER_FIELDS = ("answer", "output")  # the placeholders that show the answer (cut to the prompt budget)


def prompt_fields(record: Example) -> dict[str, Any]:
    """Placeholder values: id, instruction, input, answer (and `output`, AlpaGasus's name for it)."""
    last = max(i for i, m in enumerate(record.messages) if m.role == "assistant")
    if "instruction" in record.metadata:
        instruction = str(record.metadata["instruction"])
    else:
        instruction = next((m.content for m in reversed(record.messages[:last]) if m.role == "user"), "")
    answer = record.messages[last].content.strip()
    return {
        "id": record.id,
        "instruction": instruction.strip(),
        "input": str(record.metadata.get("input") or "").strip(),
        "answer": answer,
        "output": answer,
    }


@dataclass(frozen=True, slots=True)
class Failure:
    """A record the stage could not process: why, and the reply it could not read (if any)."""

    id: str
    row: int
    status: str
    error: str
    raw: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "row": self.row, "status": self.status, "error": self.error, "raw": self.raw}

    def line(self) -> str:
        return f"{self.id} (row {self.row}): {self.status}: {self.error}"
