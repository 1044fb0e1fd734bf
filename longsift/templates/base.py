"""What every template provides: render a conversation to text, mark the assistant spans, know the stop token.

A template turns a `Conversation` (messages plus, when known, the Alpaca instruction/input of the first user turn)
into one string. Training text marks the character spans of each assistant turn, end-of-turn token included, so the
trainer can put the loss on exactly those tokens; a generation prompt ends where the model starts to write. The same
object does both, which is the point: train and generate can no longer disagree on the layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from longsift.errors import ConfigError
from longsift.records import EvalPrompt, Example, Message


@dataclass(frozen=True, slots=True)
class Conversation:
    """Messages to render; `instruction`/`input` rebuild the Alpaca layout of the first user turn when known."""

    messages: tuple[Message, ...]
    instruction: str | None = None
    input: str = ""

    @classmethod
    def from_example(cls, example: Example) -> Conversation:
        instruction = example.metadata.get("instruction")
        return cls(
            example.messages,
            str(instruction) if instruction is not None else None,
            str(example.metadata.get("input") or ""),
        )

    @classmethod
    def from_prompt(cls, prompt: EvalPrompt, answers: Sequence[str] = ()) -> Conversation:
        """The conversation for the next turn of `prompt`, given the model's earlier `answers`."""
        if len(answers) >= len(prompt.turns):
            raise ValueError(f"{prompt.id}: {len(answers)} answers for {len(prompt.turns)} turns")
        messages: list[Message] = []
        if prompt.metadata.get("system"):
            messages.append(Message("system", str(prompt.metadata["system"])))
        for i, answer in enumerate(answers):
            messages += [Message("user", prompt.turns[i]), Message("assistant", answer)]
        messages.append(Message("user", prompt.turns[len(answers)]))
        instruction = prompt.metadata.get("instruction")
        return cls(tuple(messages), str(instruction) if instruction is not None else None,
                   str(prompt.metadata.get("input") or ""))  # fmt: skip


@dataclass(frozen=True, slots=True)
class Rendered:
    """Rendered text and the [start, end) character spans of the assistant turns (end-of-turn token included)."""

    text: str
    spans: tuple[tuple[int, int], ...] = ()


class Template:
    """Base class. Subclasses set `name` and implement `render`; `eos_token` closes every assistant turn."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: whether the tokenizer should add its own special tokens (BOS) when encoding the rendered text
    add_special_tokens: ClassVar[bool] = True

    def __init__(self, eos_token: str, system: str | None = None) -> None:
        if not eos_token:
            raise ConfigError(f"template {self.name!r} needs an end-of-sequence token; the tokenizer has none")
        self.eos_token = eos_token
        self.system = self.default_system() if system is None else system

    @classmethod
    def for_tokenizer(cls, tokenizer: Any, system: str | None = None) -> Template:
        return cls(tokenizer.eos_token, system)

    def default_system(self) -> str:
        return ""

    def render(self, conversation: Conversation, add_generation_prompt: bool) -> Rendered:
        raise NotImplementedError

    # -- what train and generate call -------------------------------------------------------------------------
    def prompt(self, conversation: Conversation) -> str:
        """The text the model continues: everything up to where the assistant starts writing."""
        if not conversation.messages or conversation.messages[-1].role != "user":
            raise ValueError("a generation prompt must end with a user turn")
        return self.render(conversation, add_generation_prompt=True).text

    def prompt_for(self, item: EvalPrompt | Example, answers: Sequence[str] = ()) -> str:
        """The prompt for an eval prompt's next turn (after `answers`), or for an example's first answer."""
        if isinstance(item, EvalPrompt):
            return self.prompt(Conversation.from_prompt(item, answers))
        conversation = Conversation.from_example(item)
        first_answer = next(i for i, m in enumerate(item.messages) if m.role == "assistant")
        return self.prompt(Conversation(item.messages[:first_answer], conversation.instruction, conversation.input))

    def training_text(self, conversation: Conversation) -> Rendered:
        if not conversation.messages or conversation.messages[-1].role != "assistant":
            raise ValueError("a training conversation must end with an assistant turn")
        return self.render(conversation, add_generation_prompt=False)

    def stop_tokens(self) -> list[str]:
        """Tokens that end the assistant's turn at generation time."""
        return [self.eos_token]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "system": self.system, "eos_token": self.eos_token}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(eos_token={self.eos_token!r})"


def first_user_index(messages: Sequence[Message]) -> int:
    return next((i for i, m in enumerate(messages) if m.role == "user"), -1)


def system_text(messages: Sequence[Message], default: str) -> str:
    """The conversation's own system message wins over the template's default."""
    return next((m.content for m in messages if m.role == "system"), default)


class SpanBuilder:
    """Accumulates text and records where assistant turns start and end."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.spans: list[tuple[int, int]] = []

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.length += len(text)

    def add_assistant(self, text: str) -> None:
        start = self.length
        self.add(text)
        self.spans.append((start, self.length))

    def build(self) -> Rendered:
        return Rendered("".join(self.parts), tuple(self.spans))
