"""The values the LLM layer passes around: a chat request, its sampling parameters, a call result, and the
completion and usage every model runner returns (defined once, in longsift.models.types).

A request's cache key hashes only what changes the output: backend, model, messages and sampling parameters.
Where the request is sent (base URL) and how (timeouts, headers, the API key) is deliberately not part of it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import orjson

from longsift.models.types import Completion, Usage
from longsift.records import Message

KEY_VERSION = 1
Status = Literal["ok", "failed", "skipped"]


@dataclass(frozen=True, slots=True)
class Sampling:
    """Sampling parameters; every field is part of the cache key. None means "the server's default"."""

    temperature: float = 0.0
    max_tokens: int | None = 1024
    top_p: float | None = None
    seed: int | None = None
    n: int = 1
    stop: tuple[str, ...] | None = None

    def __post_init__(self) -> None:  # 0 and 0.0, ["x"] and ("x",) must give the same cache key
        coerce = object.__setattr__
        coerce(self, "temperature", float(self.temperature))
        coerce(self, "top_p", None if self.top_p is None else float(self.top_p))
        coerce(self, "max_tokens", None if self.max_tokens is None else int(self.max_tokens))
        coerce(self, "seed", None if self.seed is None else int(self.seed))
        coerce(self, "n", int(self.n))
        stop = (self.stop,) if isinstance(self.stop, str) else self.stop
        coerce(self, "stop", None if stop is None else tuple(str(s) for s in stop))

    def to_dict(self) -> dict[str, Any]:
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}  # asdict deep-copies: slow
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in values.items() if v is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Sampling:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(
                f"unknown sampling parameters {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}"
            )
        return cls(**data)

    def but(self, **changes: Any) -> Sampling:
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One chat completion to ask for. `tag` is free text for the caller (e.g. a record id); not in the key.
    `inputs`: what the messages were rendered from, for backends that read it instead of the prompt (the
    reference judges, longsift.llm.backends.reference); not in the key: the messages already hold it."""

    messages: tuple[Message, ...]
    sampling: Sampling = field(default_factory=Sampling)
    tag: str = ""
    inputs: Mapping[str, Any] | None = field(default=None, compare=False)

    @classmethod
    def of(cls, messages: Iterable[Message | Mapping[str, str]] | str, sampling: Sampling | None = None, **kw: Any):
        """Build from Messages, {"role", "content"} dicts, or a bare user prompt string."""
        if isinstance(messages, str):
            messages = [Message("user", messages)]
        built = tuple(m if isinstance(m, Message) else Message(m["role"], m["content"]) for m in messages)  # type: ignore[arg-type]
        return cls(built, sampling or Sampling(), **kw)

    def message_dicts(self) -> list[dict[str, str]]:
        return [m.to_dict() for m in self.messages]

    def key(self, backend: str, model: str) -> str:
        return request_key(backend, model, self.messages, self.sampling)

    def approx_chars(self) -> int:
        return sum(len(m.content) for m in self.messages)


def request_key(backend: str, model: str, messages: Sequence[Message], sampling: Sampling) -> str:
    payload = {
        "v": KEY_VERSION,
        "backend": backend,
        "model": model,
        "messages": [[m.role, m.content] for m in messages],
        "sampling": sampling.to_dict(),
    }
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True, slots=True)
class CallResult:
    """The outcome of one request in one run.

    status: "ok" (answered), "failed" (error holds the reason, attempts how many tries in all runs), or
    "skipped" (not attempted: --retry-failed only retries recorded failures; cache-only runs send nothing).
    `cached` is True when the answer came from the cache (no new call); `cost` is None when the price is unknown.
    """

    request: ChatRequest
    key: str
    status: Status
    completion: Completion | None = None
    error: str | None = None
    attempts: int = 0
    cost: float | None = None
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def text(self) -> str | None:
        return self.completion.text if self.completion else None


__all__ = ["CallResult", "ChatRequest", "Completion", "Sampling", "Status", "Usage", "request_key"]
