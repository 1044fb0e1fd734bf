"""Every option of an LLM stage in one place (LLMOptions): the CLI's LLM flags (longsift.cli.llm_options) and
a recipe's `llm:` block are built from it.

The API key itself is never held here: only the NAME of the environment variable it is read from, at the
moment a client is created. Settings can therefore be printed, logged and written to manifests safely.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pydantic import AliasChoices, field_validator, model_validator

from longsift.errors import ConfigError
from longsift.llm.outcomes import parse_max_failed
from longsift.options import Options, option

DEFAULT_BASE_URL = "https://api.openai.com/v1"
REPLY_CHARS_PER_TOKEN = 64  # no tokenizer spends more per token; a reply beyond is not what was asked for
REPLY_CHARS_FLOOR = 65_536
DEFAULT_TOKENS_FOR_LIMIT = 16_384  # the reply cap's basis when a request sets no max_tokens
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}


class LLMOptions(Options):
    """The options every LLM stage shares: the CLI's LLM flags (longsift.cli.llm_options) and a recipe's `llm:`
    block are both this model. `cli=False`/`recipe=False` mark what only the Python API (or the CLI) sets."""

    backend: str = option("openai", "openai (any OpenAI-compatible server), transformers or vllm (a local model "
                          "in-process), or a reference judge that needs no model: longest (the longer answer "
                          "wins), random (a seeded coin).")  # fmt: skip
    model: str | None = option(None, "Model name at the endpoint, or a local model path.",
                               flags=("--model",), deprecated=("--judge-model",))  # fmt: skip
    base_url: str | None = option(None, "OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 (default: "
                                  "$OPENAI_BASE_URL, else the OpenAI API)")  # fmt: skip
    api_key_env: str = option("OPENAI_API_KEY", "Environment variable holding the API key (the key itself is "
                              "never a flag, logged or stored).")  # fmt: skip
    concurrency: int = option(8, "Requests in flight at once.")
    timeout: float = option(120.0, "Seconds per request attempt.")
    max_attempts: int = option(6, "Tries per request (429/5xx/timeouts).")
    backoff_base: float = option(1.0, "Seconds before the first retry; doubles per attempt, with jitter (a "
                                 "server's Retry-After wins).", flags=("--backoff",))  # fmt: skip
    backoff_max: float = option(60.0, "Longest wait between retries, in seconds.", cli=False)
    rpm: float | None = option(None, "Requests-per-minute limit.")
    tpm: float | None = option(None, "Tokens-per-minute limit.")
    cache: Path | None = option(None, "SQLite cache file (default: $LONGSIFT_CACHE_DIR/llm/llm-cache.sqlite, "
                                "~/.cache/longsift/llm/ without it; `longsift llm cache` reads the same).",
                                recipe=False)  # fmt: skip
    no_cache: bool = option(False, "Do not read or write the cache.", flags=("--no-cache",), recipe=False)
    retry_failed: bool = option(False, "Send nothing but the recorded failures.", flags=("--retry-failed",))
    cache_only: bool = option(False, "Send nothing: use cached answers only (re-parse after fixing a parser).",
                              flags=("--cache-only",), recipe=False)  # fmt: skip
    dry_run: bool = option(False, "Print calls, tokens and cost; send nothing.", flags=("--dry-run",), recipe=False)
    prices: Path | None = option(None, "YAML price table overriding the packaged one.")
    tokenizer: str | None = option(None, "Local Hugging Face tokenizer to count tokens (default: a stated "
                                   "characters-per-token estimate).")  # fmt: skip
    local_batch_size: int = option(8, "Requests per forward pass of a local backend (transformers, vllm).",
                                   deprecated=("--batch-size",),
                                   validation_alias=AliasChoices("local_batch_size", "batch_size"))  # fmt: skip
    progress: bool = option(True, "Show a progress bar.", recipe=False)
    seed: int = option(0, "Seed of the retry jitter.", cli=False, recipe=False)
    max_response_bytes: int = option(4 * 1024 * 1024, "Read at most this much of an HTTP reply; a longer one is a "
                                     "failure (oversized).")  # fmt: skip
    max_reply_chars: int | None = option(None, "Longest reply text accepted (default: 64 characters per max "
                                         "token, at least 65,536).")  # fmt: skip
    max_failed: float | int | str | None = option(None, "Exit 1 (after writing the outputs) when more records "
                                                  "than this failed: a fraction (0.5, 50%) or a count (10); "
                                                  "default 0.5. A stage where every record failed always exits 1.",
                                                  recipe=False)  # fmt: skip
    check_model: bool = option(True, "Stop at once when the endpoint lists its models (GET /models) and --model "
                               "is not among them.", flags=("--model-check", "--no-model-check"))  # fmt: skip
    lease_seconds: float = option(30.0, "How long a claim on a request lasts without renewal (processes sharing "
                                  "a cache).", cli=False, recipe=False)  # fmt: skip

    @field_validator("max_failed")
    @classmethod
    def _max_failed(cls, value: float | int | str | None) -> float | int:
        return parse_max_failed(value)

    @model_validator(mode="after")
    def _check(self) -> LLMOptions:
        if self.concurrency < 1:
            raise ConfigError(f"--concurrency must be at least 1, got {self.concurrency}")
        if self.timeout <= 0:
            raise ConfigError(f"--timeout must be positive, got {self.timeout}")
        if self.max_attempts < 1:
            raise ConfigError(f"--max-attempts must be at least 1, got {self.max_attempts}")
        if self.no_cache and (self.retry_failed or self.cache_only):
            raise ConfigError("--retry-failed and --cache-only read the cache: drop --no-cache")
        if self.max_response_bytes < 1024:
            raise ConfigError(f"--max-response-bytes must be at least 1024, got {self.max_response_bytes}")
        if self.max_reply_chars is not None and self.max_reply_chars < 1:
            raise ConfigError(f"--max-reply-chars must be positive, got {self.max_reply_chars}")
        if self.lease_seconds <= 0:
            raise ConfigError(f"lease_seconds must be positive, got {self.lease_seconds}")
        if self.local_batch_size < 1:
            raise ConfigError(f"--local-batch-size must be at least 1, got {self.local_batch_size}")
        for name in ("rpm", "tpm"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"--{name} must be positive, got {value}")
        return self

    @property
    def batch_size(self) -> int:
        """What the local backends read (longsift.llm.backends)."""
        return self.local_batch_size

    def but(self, **changes: Any) -> LLMOptions:
        return self.model_copy(update=changes)

    def reply_char_limit(self, max_tokens: int | None) -> int:
        """The longest reply text accepted for a request asking for at most `max_tokens` tokens."""
        if self.max_reply_chars is not None:
            return self.max_reply_chars
        return max(REPLY_CHARS_FLOOR, REPLY_CHARS_PER_TOKEN * (max_tokens or DEFAULT_TOKENS_FOR_LIMIT))

    def require_model(self) -> str:
        if not self.model:
            raise ConfigError(f"the {self.backend} backend needs --model (a model name, or a local path)")
        return self.model

    def resolved_base_url(self) -> str:
        return (self.base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")

    def api_key(self) -> str | None:
        """Read the key from the environment now; a remote endpoint without one is a user error."""
        key = os.environ.get(self.api_key_env) or None
        host = urlparse(self.resolved_base_url()).hostname or ""
        if key is None and host not in LOCAL_HOSTS:
            raise ConfigError(
                f"no API key: set the environment variable {self.api_key_env} (or name another with --api-key-env)"
            )
        return key

    def cache_path(self, output: str | Path | None = None) -> Path | None:
        """--cache (a recipe run gives its own: RUN_DIR/cache/), else the one default place of every command;
        `output` does not move it (one cache home, the one `llm cache` finds)."""
        if self.no_cache:
            return None
        if self.cache is not None:
            return Path(self.cache)
        return default_cache_path()

    def to_dict(self) -> dict[str, Any]:
        """Safe to write to a manifest: holds no secret."""
        return self.model_dump(mode="json")


LLMSettings = LLMOptions  # the name the LLM layer's callers use


def default_cache_path(output: str | Path | None = None) -> Path:
    """The default LLM cache of every command (`output` is ignored: kept for callers; see longsift.llm.cache)."""
    from longsift.llm.cache import default_location

    return default_location()
