"""What a generation backend provides: complete many prompt strings, in batches, reporting why each one stopped."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol


@dataclass(frozen=True, slots=True)
class SamplingOptions:
    max_new_tokens: int = 512
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    batch_size: int = 16
    seed: int = 0
    #: cap on prompts x padded prompt length per batch (long prompts then go in smaller batches); None: no cap
    batch_tokens: int | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    finish: Literal["stop", "length"]
    new_tokens: int
    prompt_tokens: int
    prompt_truncated: bool = False


class Backend(Protocol):
    """Built from a model folder; `template` is the one saved with the model unless overridden."""

    name: str
    template: Any
    tokenizer: Any

    def complete(self, prompts: Sequence[str], options: SamplingOptions) -> Iterator[tuple[int, Completion]]:
        """Yield (index into prompts, completion) as batches finish, in any order."""
        ...
