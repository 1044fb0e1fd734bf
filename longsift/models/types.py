"""The values a model runner hands back: a completion (one for the LLM layer, `generate` and `serve`), its token
usage, and the log-probabilities of a continuation."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from longsift.templates import Conversation, Template


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    @property
    def total(self) -> int | None:
        if self.prompt_tokens is None or self.completion_tokens is None:
            return None
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class Completion:
    """What a model answered: the first choice's text, every choice (n > 1), why it stopped ("stop": an end token
    or stop string; "length": the token limit), token usage, whether the prompt lost its start to fit, and (from
    local engines) the first choice's generated token ids, its stop token included; not part of equality."""

    text: str
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    choices: tuple[str, ...] = ()
    prompt_truncated: bool = False
    token_ids: tuple[int, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if not self.choices:
            object.__setattr__(self, "choices", (self.text,))


@dataclass(frozen=True, slots=True)
class TokenLogprobs:
    """log p(continuation | prompt): per continuation token, their sum, and whether greedy decoding would have
    produced exactly this continuation (what lm-eval's loglikelihood requests ask for)."""

    token_ids: tuple[int, ...]
    logprobs: tuple[float, ...]
    greedy: bool
    prompt_truncated: bool = False

    @property
    def total(self) -> float:
        return float(sum(self.logprobs))


@dataclass(frozen=True, slots=True)
class ScoredToken:
    """One token of a scored sequence: log p(token | the tokens before) and the `top` most likely tokens there."""

    token_id: int
    logprob: float
    top: tuple[tuple[int, float], ...] = ()


@dataclass(frozen=True, slots=True)
class GenerationParams:
    """How to generate. temperature 0: greedy. seed None: the random state is left as it is. stop_ids None: the
    tokenizer's EOS. batch_size / batch_tokens cap each batch in prompts and in prompts x padded length."""

    max_new_tokens: int = 512
    temperature: float = 0.0
    top_p: float | None = None
    n: int = 1
    seed: int | None = None
    stop_ids: tuple[int, ...] | None = None
    stop_strings: tuple[str, ...] = ()
    batch_size: int = 16
    batch_tokens: int | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0


class ModelEngine(Protocol):
    """What a local model engine offers (longsift.models.hf, longsift.models.vllm_engine)."""

    name: str
    path: str
    tokenizer: Any

    def load(self) -> ModelEngine: ...

    def generate_batch(self, prompts: Sequence[tuple[list[int], bool]], params: GenerationParams) -> list[Completion]:
        """One batch of token-id prompts (with whether each was truncated), in order."""
        ...

    def chat(self, conversations: Sequence[Sequence[dict[str, str]]], params: GenerationParams) -> list[Completion]:
        """One batch of chat completions, in order."""
        ...

    def generate_templated(
        self, conversations: Sequence[Conversation], template: Template, params: GenerationParams
    ) -> Iterator[tuple[int, Completion]]:
        """(index, completion) as batches finish, in any order."""
        ...

    def logprobs(
        self, pairs: Sequence[tuple[str, str]], add_special_tokens: bool = True, batch_size: int = 8
    ) -> list[TokenLogprobs]: ...

    def score_tokens(
        self, rows: Sequence[Sequence[int]], top: int = 0, batch_size: int = 8
    ) -> list[list[ScoredToken]]: ...

    def embed(self, texts: Sequence[str], normalize: bool = True, batch_size: int = 32) -> Any: ...
