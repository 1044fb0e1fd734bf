"""Tokenizer tokens: any Hugging Face tokenizer by local path or hub id, fast and batched.

No special tokens are added (a length is the response's own tokens). With HF_HUB_OFFLINE set nothing
is fetched: an id that is not in the local cache fails with a clear error instead of a download.

A tokenizer.json, or a folder whose tokenizer_config.json names the plain PreTrainedTokenizerFast (and whose
special tokens the tokenizer.json already holds: transformers would add the missing ones), is loaded by
`tokenizers` alone: transformers would build the same backend around it, at the cost of importing torch
(seconds). Everything else goes through transformers' AutoTokenizer.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
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
    fast: FastCount | None = None  # transformers' tokenizers count in batches only (see __init__ for the rest)

    def __init__(self, tokenizer: str | None = None) -> None:
        if not tokenizer:
            raise ConfigError("the 'tokens' unit needs a tokenizer: pass --tokenizer PATH_OR_HUB_ID")
        if os.path.isabs(tokenizer) and not os.path.exists(tokenizer):  # a path, not a hub id
            where = "give a tokenizer.json, a tokenizer folder or a hub id"
            raise ConfigError(f"tokenizer {tokenizer} not found ({where})")
        self.tokenizer = tokenizer
        self.description = f"tokens of {tokenizer} (no special tokens)"
        self._backend = _bare_backend(tokenizer)
        if self._backend is not None:
            self._class = _transformers_class()
            # selection's hot loop (and `stats`') may count it: a block's texts in one batch, in any process
            self.fast = FastCount(self._count_one, count_many=self.count)
            return
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
        self._class = type(self._tokenizer).__name__

    def count(self, texts: Sequence[str]) -> list[int]:
        counts: list[int] = []
        if self._backend is not None:  # one Rust call per chunk, on every core; no offsets tracked
            encode = getattr(self._backend, "encode_batch_fast", self._backend.encode_batch)
            for start in range(0, len(texts), BATCH):
                counts.extend(len(e.ids) for e in encode(list(texts[start : start + BATCH]), add_special_tokens=False))
            return counts
        for start in range(0, len(texts), BATCH):
            encoded = self._tokenizer(
                list(texts[start : start + BATCH]),
                add_special_tokens=False,
                return_attention_mask=False,
                return_token_type_ids=False,
            )
            counts.extend(len(ids) for ids in encoded["input_ids"])
        return counts

    def _count_one(self, text: str) -> int:
        return len(self._backend.encode(text, add_special_tokens=False).ids)

    def describe(self) -> dict[str, Any]:
        return {
            "unit": self.name,
            "tokenizer": self.tokenizer,
            "tokenizer_class": self._class,
            "fast": self._backend is not None or bool(getattr(self._tokenizer, "is_fast", False)),
            "special_tokens": False,
        }


PARALLELISM = "TOKENIZERS_PARALLELISM"  # read by `tokenizers` at every batch call


def one_thread_each() -> str | None:
    """Before starting worker processes: each tokenizer counts on one thread from here on (the processes share
    out the cores), and, the variable being set, tokenizers' fork guard neither warns nor lets a child use a
    thread pool it lost at the fork (a deadlock). Returns the previous setting for `restore_threads`."""
    previous = os.environ.get(PARALLELISM)
    os.environ[PARALLELISM] = "false"
    return previous


def restore_threads(previous: str | None) -> None:
    if previous is None:
        os.environ.pop(PARALLELISM, None)
    else:
        os.environ[PARALLELISM] = previous


def _bare_backend(tokenizer: str) -> Any:
    """The `tokenizers` backend that transformers would wrap unchanged (see the module docstring), or None."""
    path = Path(tokenizer)
    file = path if path.is_file() else path / "tokenizer.json"
    if not file.is_file() or (path.is_dir() and not _plain_fast_folder(path, file)):
        return None
    try:
        from tokenizers import Tokenizer
    except ImportError:
        return None
    try:
        backend = Tokenizer.from_file(str(file))
    except Exception:  # not a tokenizers file: transformers says why
        return None
    if backend.get_vocab_size() > 100_000:  # transformers may patch the pre-tokenizer of these (Mistral's)
        return None
    backend.no_truncation()  # as transformers does for a call without truncation or padding
    backend.no_padding()
    return backend


def _transformers_class() -> str:
    """The class name transformers gives a plain fast tokenizer (TokenizersBackend from version 5), unimported."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        major = int(version("transformers").split(".")[0])
    except (PackageNotFoundError, ValueError):
        major = 0
    return "TokenizersBackend" if major >= 5 else "PreTrainedTokenizerFast"


_SPECIAL = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")


def _plain_fast_folder(folder: Path, file: Path) -> bool:
    """The folder's tokenizer loads as a plain PreTrainedTokenizerFast whose special tokens are all in `file`."""
    import orjson

    try:
        config = orjson.loads((folder / "tokenizer_config.json").read_bytes())
        added = {token["content"] for token in orjson.loads(file.read_bytes()).get("added_tokens", [])}
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return False
    if not isinstance(config, dict) or config.get("tokenizer_class") not in (
        "PreTrainedTokenizerFast",
        _transformers_class(),
    ):
        return False
    if "auto_map" in config or config.get("add_prefix_space") or config.get("split_special_tokens"):
        return False
    named = [config.get(key) for key in _SPECIAL]
    extra = config.get("extra_special_tokens") or []
    named += list(config.get("additional_special_tokens") or []) + list(
        extra.values() if isinstance(extra, dict) else extra
    )
    named += list((config.get("added_tokens_decoder") or {}).values())
    contents = [token.get("content") if isinstance(token, dict) else token for token in named if token]
    return all(isinstance(token, str) and token in added for token in contents)
