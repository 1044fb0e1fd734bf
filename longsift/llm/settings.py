"""Every option of an LLM stage in one place; the CLI builds it from shared flags (longsift.cli.llm_options).

The API key itself is never held here: only the NAME of the environment variable it is read from, at the
moment a client is created. Settings can therefore be printed, logged and written to manifests safely.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from longsift.errors import ConfigError
from longsift.llm.outcomes import parse_max_failed

DEFAULT_BASE_URL = "https://api.openai.com/v1"
CACHE_FILE = "llm-cache.sqlite"
REPLY_CHARS_PER_TOKEN = 64  # no tokenizer spends more per token; a reply beyond is not what was asked for
REPLY_CHARS_FLOOR = 65_536
DEFAULT_TOKENS_FOR_LIMIT = 16_384  # the reply cap's basis when a request sets no max_tokens
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}


@dataclass
class LLMSettings:
    backend: str = "openai"
    model: str | None = None
    base_url: str | None = None  # None: $OPENAI_BASE_URL, else the OpenAI API
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 8
    timeout: float = 120.0  # seconds per request (one attempt)
    max_attempts: int = 6
    backoff_base: float = 1.0  # seconds; doubles per attempt, with jitter
    backoff_max: float = 60.0
    rpm: float | None = None
    tpm: float | None = None
    cache: Path | None = None  # None: default_cache_path(output)
    no_cache: bool = False
    retry_failed: bool = False
    cache_only: bool = False
    dry_run: bool = False
    prices: Path | None = None
    tokenizer: str | None = None  # a Hugging Face tokenizer path, for counting tokens
    batch_size: int = 8  # local backends
    progress: bool = True
    seed: int = 0  # jitter
    max_response_bytes: int = 4 * 1024 * 1024  # an HTTP body is read this far at most: beyond, `oversized`
    max_reply_chars: int | None = None  # None: 64 characters per requested max token, at least 65,536
    max_failed: float | int | str | None = None  # a fraction or a count; None: longsift.llm.outcomes default
    check_model: bool = True  # compare --model with what GET /models lists before sending
    lease_seconds: float = 30.0  # how long a claim on a request lasts without renewal (processes sharing a cache)

    def __post_init__(self) -> None:
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
        self.max_failed = parse_max_failed(self.max_failed)
        for name in ("rpm", "tpm"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"--{name} must be positive, got {value}")

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
        """--cache, else beside the output (its run directory), else the user cache directory."""
        if self.no_cache:
            return None
        if self.cache is not None:
            return Path(self.cache)
        return default_cache_path(output)

    def to_dict(self) -> dict[str, Any]:
        """Safe to write to a manifest: holds no secret."""
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


def default_cache_path(output: str | Path | None = None) -> Path:
    if output is not None:
        output = Path(output)
        run_dir = output if output.is_dir() or not output.suffix else output.parent
        return run_dir / CACHE_FILE
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "longsift" / CACHE_FILE
