"""What `generate` runs on: a local model engine (longsift.models) with the template saved beside the model (or the
one asked for), and the stage's sampling options."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from longsift.models import ENGINES, Completion, GenerationParams, LoadOptions, ModelEngine
from longsift.templates import Conversation, Template, load_template


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

    def params(self) -> GenerationParams:
        return GenerationParams(
            max_new_tokens=self.max_new_tokens, temperature=self.temperature, top_p=self.top_p, seed=self.seed,
            batch_size=self.batch_size, batch_tokens=self.batch_tokens,
        )  # fmt: skip


class GenerationEngine:
    """A model engine and the template its prompts are rendered with."""

    def __init__(self, runner: ModelEngine, template: Template) -> None:
        self.runner = runner
        self.template = template

    @classmethod
    def open(
        cls, backend: str, model: str | Path, template: str | None = None, dtype: str = "auto",
        trust_remote_code: bool = False, device: str | None = None,
    ) -> GenerationEngine:  # fmt: skip
        """The engine `backend` (longsift.models.ENGINES) loaded now, so a bad model fails before any prompt."""
        options = LoadOptions(device=device, dtype=dtype, trust_remote_code=trust_remote_code)
        runner = ENGINES.get(backend)(str(model), options).load()
        return cls(runner, load_template(model, runner.tokenizer, template))

    @property
    def name(self) -> str:
        return self.runner.name

    @property
    def tokenizer(self) -> object:
        return self.runner.tokenizer

    def complete(
        self, conversations: Sequence[Conversation], options: SamplingOptions
    ) -> Iterator[tuple[int, Completion]]:
        """Yield (index into conversations, completion) as batches finish, in any order."""
        return self.runner.generate_templated(conversations, self.template, options.params())


__all__ = ["Completion", "GenerationEngine", "SamplingOptions"]
