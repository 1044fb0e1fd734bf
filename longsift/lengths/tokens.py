"""Tokenizer tokens: any Hugging Face tokenizer by local path or hub id, fast and batched.

No special tokens are added (a length is the response's own tokens). With HF_HUB_OFFLINE set nothing
is fetched: an id that is not in the local cache fails with a clear error instead of a download.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from longsift.errors import ConfigError, MissingDependencyError
from longsift.lengths import FastCount

BATCH = 2000  # one call on 52k long texts peaks at ~5 GB; chunks of ~2,000 stay near 1 GB


def _offline() -> bool:
    return any(
        os.environ.get(var, "").lower() in ("1", "true", "yes") for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


class Tokens:
    name = "tokens"
    fast: FastCount | None = None  # a fast tokenizer pays off in batches only

    def __init__(self, tokenizer: str | None = None) -> None:
        if not tokenizer:
            raise ConfigError("the 'tokens' unit needs a tokenizer: pass --tokenizer PATH_OR_HUB_ID")
        if os.path.isabs(tokenizer) and not os.path.exists(tokenizer):  # a path, not a hub id
            where = "give a tokenizer.json, a tokenizer folder or a hub id"
            raise ConfigError(f"tokenizer {tokenizer} not found ({where})")
        try:
            from transformers import AutoTokenizer, PreTrainedTokenizerFast
        except ImportError as exc:
            raise MissingDependencyError("transformers", "train", "counting tokenizer tokens") from exc
        offline = _offline()
        try:
            if os.path.isfile(tokenizer):  # a bare tokenizer.json, as `tokenizers` saves it
                self._tokenizer: Any = PreTrainedTokenizerFast(tokenizer_file=tokenizer)
            else:
                self._tokenizer = AutoTokenizer.from_pretrained(
                    tokenizer, use_fast=True, local_files_only=offline, trust_remote_code=False
                )
        except (OSError, ValueError) as exc:
            where = "not a local tokenizer folder and not in the Hugging Face cache (HF_HUB_OFFLINE is set)"
            reason = where if offline and not os.path.isdir(tokenizer) else str(exc).splitlines()[0]
            raise ConfigError(f"cannot load tokenizer {tokenizer!r}: {reason}") from None
        self._tokenizer.model_max_length = 1 << 62  # we count, we never feed a model: no length warnings
        self.tokenizer = tokenizer
        self.description = f"tokens of {tokenizer} (no special tokens)"

    def count(self, texts: Sequence[str]) -> list[int]:
        counts: list[int] = []
        for start in range(0, len(texts), BATCH):
            encoded = self._tokenizer(
                list(texts[start : start + BATCH]),
                add_special_tokens=False,
                return_attention_mask=False,
                return_token_type_ids=False,
            )
            counts.extend(len(ids) for ids in encoded["input_ids"])
        return counts

    def describe(self) -> dict[str, Any]:
        return {
            "unit": self.name,
            "tokenizer": self.tokenizer,
            "tokenizer_class": type(self._tokenizer).__name__,
            "fast": bool(getattr(self._tokenizer, "is_fast", False)),
            "special_tokens": False,
        }
