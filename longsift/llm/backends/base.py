"""What a backend is: remote ones answer one request at a time (the engine runs many concurrently), local ones
answer a batch in-process (the engine feeds them batches from a worker thread).

Backends report failures by kind, so the engine's retry policy lives in one place:
`TransientError` may succeed if tried again (429, 5xx, timeout, dropped connection, malformed body);
`PermanentError` cannot (bad request, auth); `ModelNotFound` (a kind of it) stops the whole run.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from longsift.llm.types import ChatRequest, Completion

if TYPE_CHECKING:
    from longsift.llm.settings import LLMSettings


class TransientError(Exception):
    def __init__(self, reason: str, retry_after: float | None = None, rate_limited: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.retry_after, self.rate_limited = reason, retry_after, rate_limited


class PermanentError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ModelNotFound(PermanentError):
    """The endpoint says the model does not exist: no request of the run can succeed, so the run stops at once."""


class Backend(ABC):
    name: ClassVar[str]
    model: str

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: LLMSettings) -> Backend: ...

    def key_model(self) -> str:
        """The model name that goes into cache keys."""
        return self.model

    def describe(self) -> str:
        return f"{self.name}:{self.model}"


class RemoteBackend(Backend):
    """Talks to a server; `open`/`close` bracket one run (a client lives in one event loop)."""

    async def open(self, concurrency: int) -> None:  # noqa: B027 - optional hook
        pass

    async def close(self) -> None:  # noqa: B027 - optional hook
        pass

    @abstractmethod
    async def complete(self, request: ChatRequest, timeout: float) -> Completion:
        """One completion, or raise TransientError / PermanentError."""


class LocalBackend(Backend):
    """Generates in-process; called from a worker thread with batches of requests that share sampling params."""

    batch_size: int = 8

    @abstractmethod
    def generate_batch(self, requests: Sequence[ChatRequest]) -> list[Completion]: ...
