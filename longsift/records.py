"""Plain records passed between stages.

Every stage takes and returns these; they are frozen so a stage cannot change what another one holds.
`metadata` is a plain dict (JSON-serialisable values only) for fields a stage adds, e.g. scores.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]
ROLES: frozenset[str] = frozenset({"system", "user", "assistant"})


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True, slots=True)
class Example:
    """One instruction-tuning example: a conversation plus where it came from.

    `row` is the 0-based position in the source file; it orders ties and names FastChat ids.
    Alpaca-shaped sources keep `instruction` / `input` in metadata so that writers can rebuild
    the exact Alpaca prompt layout rather than guessing it back from the user turn.
    """

    id: str
    messages: tuple[Message, ...]
    source: str = ""
    row: int = -1
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def response(self) -> str:
        """All assistant turns, joined; single-turn data gives the one response."""
        return "\n\n".join(m.content for m in self.messages if m.role == "assistant")

    @property
    def responses(self) -> list[str]:
        return [m.content for m in self.messages if m.role == "assistant"]

    @property
    def prompt(self) -> str:
        """The first user turn."""
        return next((m.content for m in self.messages if m.role == "user"), "")

    @property
    def system(self) -> str | None:
        return next((m.content for m in self.messages if m.role == "system"), None)

    @property
    def instruction(self) -> str:
        return str(self.metadata.get("instruction", self.prompt))

    @property
    def input(self) -> str:
        return str(self.metadata.get("input", ""))

    def with_response(self, response: str, **metadata: Any) -> Example:
        """A copy whose last assistant turn is `response`, with extra metadata merged in."""
        messages = list(self.messages)
        last = max(i for i, m in enumerate(messages) if m.role == "assistant")
        messages[last] = Message("assistant", response)
        return Example(self.id, tuple(messages), self.source, self.row, {**self.metadata, **metadata})

    def with_metadata(self, **metadata: Any) -> Example:
        return Example(self.id, self.messages, self.source, self.row, {**self.metadata, **metadata})

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "messages": [m.to_dict() for m in self.messages],
            "source": self.source,
            "row": self.row,
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Example:
        messages = tuple(Message(m["role"], m["content"]) for m in data["messages"])
        return cls(
            id=str(data["id"]),
            messages=messages,
            source=str(data.get("source") or ""),
            row=int(data.get("row", -1) if data.get("row") is not None else -1),
            metadata=dict(data.get("metadata") or {}),
        )

    @classmethod
    def from_alpaca(
        cls, instruction: str, input: str, output: str, *, id: str, row: int = -1, source: str = ""
    ) -> Example:
        user = f"{instruction}\n\n{input}" if input else instruction
        return cls(
            id=id,
            messages=(Message("user", user), Message("assistant", output)),
            source=source,
            row=row,
            metadata={"instruction": instruction, "input": input},
        )


@dataclass(frozen=True, slots=True)
class EvalPrompt:
    """One prompt of an evaluation set. `turns` has one entry per user turn (MT-Bench has two)."""

    id: str
    eval_set: str
    turns: tuple[str, ...]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def instruction(self) -> str:
        return self.turns[0]


@dataclass(frozen=True, slots=True)
class Generation:
    """A model's answers to one EvalPrompt; `outputs[i]` answers `turns[i]`."""

    prompt_id: str
    eval_set: str
    model: str
    turns: tuple[str, ...]
    outputs: tuple[str, ...]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def instruction(self) -> str:
        return self.turns[0]

    @property
    def output(self) -> str:
        return self.outputs[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt_id": self.prompt_id,
            "eval_set": self.eval_set,
            "model": self.model,
            "turns": list(self.turns),
            "outputs": list(self.outputs),
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Generation:
        return cls(
            prompt_id=str(data["prompt_id"]),
            eval_set=str(data["eval_set"]),
            model=str(data["model"]),
            turns=tuple(data["turns"]),
            outputs=tuple(data["outputs"]),
            metadata=dict(data.get("metadata") or {}),
        )


Verdict = Literal["a", "b", "tie"]
Outcome = Literal["win", "tie", "lose"]


@dataclass(frozen=True, slots=True)
class Judgment:
    """One judge call on one prompt in one order, already mapped back to A/B terms.

    `order` "ab" shows A's answer first, "ba" shows B's first. `verdict` is None when the call or the
    parse failed (`status` "failed", `error` says why): a failure is never a tie and never dropped.
    """

    prompt_id: str
    eval_set: str
    model_a: str
    model_b: str
    order: Literal["ab", "ba"]
    judge: str
    template: str
    verdict: Verdict | None
    score_a: float | None = None
    score_b: float | None = None
    raw: str = ""
    status: Literal["ok", "failed"] = "ok"
    error: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Judgment:
        return cls(**{k: v for k, v in data.items() if k in cls.__slots__})
