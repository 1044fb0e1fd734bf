"""Token counting for prompt budgets, and cutting an answer so the whole prompt fits.

The paper's refine script tokenized instruction + input + output with the Llama-2 tokenizer and, when that came
to more than 2048 tokens, removed `n - 2048` *characters* from the end of the output (`output[:-gap]`): a cut
several times too small, which left prompts over the budget. Here the rendered prompt (every message) is counted
in tokens and the answer is cut at a token boundary until the prompt fits.

Counting uses a Hugging Face tokenizer loaded from a local path (never fetched from a hub: the model name sent to
an API is never used to find a tokenizer), or, without one, a conservative estimate of characters per token.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from longsift.errors import ConfigError, MissingDependencyError

# English BPE text runs at ~4 characters per token (GPT, Llama); 3 over-counts tokens, so prompts stay in budget
# for most prose. Code, numbers and non-Latin scripts run denser: pass a tokenizer when that matters.
DEFAULT_CHARS_PER_TOKEN = 3.0


class TokenCounter(Protocol):
    description: str

    def count(self, text: str) -> int: ...

    def prefix(self, text: str, tokens: int) -> str:
        """The longest start of `text` that holds at most `tokens` tokens."""
        ...


@dataclass(frozen=True)
class CharEstimate:
    chars_per_token: float = DEFAULT_CHARS_PER_TOKEN

    def __post_init__(self) -> None:
        if self.chars_per_token <= 0:
            raise ConfigError(f"chars per token must be positive, got {self.chars_per_token}")

    @property
    def description(self) -> str:
        return f"estimated at {self.chars_per_token:g} characters per token (no --tokenizer)"

    def count(self, text: str) -> int:
        return math.ceil(len(text) / self.chars_per_token)

    def prefix(self, text: str, tokens: int) -> str:
        return text[: max(0, math.floor(tokens * self.chars_per_token))]


class HFTokenCounter:
    """Counts with a local Hugging Face tokenizer (fast tokenizers cut at exact character offsets)."""

    def __init__(self, tokenizer: Any, name: str) -> None:
        self.tokenizer = tokenizer
        self.description = f"counted with the tokenizer {name}"

    def count(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def prefix(self, text: str, tokens: int) -> str:
        if tokens <= 0:
            return ""
        if getattr(self.tokenizer, "is_fast", False):
            offsets = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
            return text if len(offsets) <= tokens else text[: offsets[tokens][0]]
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return text if len(ids) <= tokens else self.tokenizer.decode(ids[:tokens])


def load_counter(tokenizer: str | Path | None = None, chars_per_token: float = DEFAULT_CHARS_PER_TOKEN) -> TokenCounter:
    """A counter from a local tokenizer folder/file, else the characters-per-token estimate."""
    if tokenizer is None:
        return CharEstimate(chars_per_token)
    try:
        from transformers import AutoTokenizer
    except ImportError as exc:
        raise MissingDependencyError("transformers", "train", "counting tokens with --tokenizer") from exc
    path = Path(tokenizer)
    if not path.exists():
        raise ConfigError(f"--tokenizer {tokenizer}: no such local file or folder (tokenizers are never downloaded)")
    try:
        loaded = AutoTokenizer.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--tokenizer {tokenizer}: cannot load a tokenizer there ({exc})") from exc
    return HFTokenCounter(loaded, str(tokenizer))


@dataclass(frozen=True, slots=True)
class Fitted:
    """An answer cut to fit: `text` is what the prompt shows; `tokens` counts the whole rendered prompt."""

    text: str
    tokens: int
    truncated: bool


def fit_answer(answer: str, render: Callable[[str], str], counter: TokenCounter, budget: int) -> Fitted | None:
    """The longest start of `answer` for which `render(answer)` holds at most `budget` tokens.

    None when even an empty answer does not fit (the instruction alone is over budget).
    """
    full = counter.count(render(answer))
    if full <= budget:
        return Fitted(answer, full, truncated=False)
    room = budget - counter.count(render(""))
    if room < 0:
        return None
    # Token counts are not quite additive across the join, so shrink until the rendered prompt fits.
    while room >= 0:
        cut = counter.prefix(answer, room).rstrip()
        tokens = counter.count(render(cut))
        if tokens <= budget:
            return Fitted(cut, tokens, truncated=True)
        room -= max(1, tokens - budget)
    return None
