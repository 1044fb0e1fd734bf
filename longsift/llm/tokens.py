"""Counting tokens for dry runs and prompt budgets: a real tokenizer when given, else a stated estimate.

Loading a tokenizer never reaches the network (local_files_only): an unknown name fails fast with a clear
message instead of a download attempt.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from longsift.errors import ConfigError, MissingDependencyError
from longsift.records import Message

MESSAGE_OVERHEAD = 4  # role markers and separators per message, as OpenAI documents for its chat format
DEFAULT_CHARS_PER_TOKEN = 4.0  # English prose with BPE tokenizers; a cost estimate, not a budget


class TokenCounter:
    def __init__(self, tokenizer: Any = None, chars_per_token: float = DEFAULT_CHARS_PER_TOKEN, name: str = "") -> None:
        self.tokenizer = tokenizer
        self.chars_per_token = chars_per_token
        self.name = name

    @classmethod
    def load(cls, tokenizer: str | None, chars_per_token: float = DEFAULT_CHARS_PER_TOKEN) -> TokenCounter:
        if not tokenizer:
            return cls(None, chars_per_token)
        try:
            from transformers import AutoTokenizer
        except ImportError:
            raise MissingDependencyError("transformers", "train", "Counting tokens with --tokenizer") from None
        try:
            loaded = AutoTokenizer.from_pretrained(tokenizer, local_files_only=True, trust_remote_code=False)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load the tokenizer {tokenizer!r} from local files: {exc}") from None
        return cls(loaded, chars_per_token, tokenizer)

    @property
    def exact(self) -> bool:
        return self.tokenizer is not None

    def describe(self) -> str:
        if self.tokenizer is not None:
            return f"counted with the tokenizer {self.name or type(self.tokenizer).__name__}"
        return f"estimated at {self.chars_per_token:g} characters per token (pass --tokenizer to count exactly)"

    def count(self, text: str) -> int:
        if self.tokenizer is not None:
            return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        return math.ceil(len(text) / self.chars_per_token)

    def count_messages(self, messages: Sequence[Message]) -> int:
        return sum(self.count(m.content) + MESSAGE_OVERHEAD for m in messages)

    def truncate(self, text: str, max_tokens: int) -> str:
        """The longest prefix of `text` that is at most `max_tokens` tokens."""
        if self.count(text) <= max_tokens:
            return text
        if self.tokenizer is None:
            return text[: int(max_tokens * self.chars_per_token)]
        if max_tokens <= 0:
            return ""
        if not getattr(self.tokenizer, "is_fast", False):  # no offsets: decode the kept ids
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"][:max_tokens]
            return str(self.tokenizer.decode(ids))
        encoded = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return text[: encoded["offset_mapping"][max_tokens - 1][1]]
