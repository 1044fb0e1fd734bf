"""LLM backends by name. Entries are lazy "module:attr" strings: torch, transformers and vllm load only when chosen.

A new backend is one module with a class built by `from_settings(settings)` plus one line here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from longsift.llm.backends.base import (
    Backend,
    LocalBackend,
    ModelNotFound,
    PermanentError,
    RemoteBackend,
    TransientError,
)
from longsift.registry import Registry

if TYPE_CHECKING:
    from longsift.llm.settings import LLMSettings

BACKENDS: Registry[type[Backend]] = Registry("LLM backend")
BACKENDS.register("openai", "longsift.llm.backends.openai_compat:OpenAIBackend")
BACKENDS.register("transformers", "longsift.llm.backends.transformers_local:TransformersBackend")
BACKENDS.register("vllm", "longsift.llm.backends.vllm_local:VLLMBackend")
BACKENDS.register("longest", "longsift.llm.backends.reference:LongestJudge")
BACKENDS.register("random", "longsift.llm.backends.reference:RandomJudge")


_HELD: dict[tuple[str, str | None, int], Backend] = {}


def _held_key(settings: LLMSettings) -> tuple[str, str | None, int]:
    return settings.backend, settings.model, settings.batch_size  # what a local backend is built from


def make_backend(settings: LLMSettings) -> Backend:
    """The backend the settings name; a held one (hold_local_backend) where this process holds it."""
    return _HELD.get(_held_key(settings)) or BACKENDS.get(settings.backend).from_settings(settings)


def hold_local_backend(settings: LLMSettings) -> Backend | None:
    """Build a local backend now, load its model, and keep it for every later engine of this process with the same
    settings: a long-lived worker (a Ray actor running shard after shard) loads its model once, not per shard.
    A remote backend holds no model: None, nothing kept."""
    backend = BACKENDS.get(settings.backend)
    if not issubclass(backend, LocalBackend):
        return None
    key = _held_key(settings)
    if key not in _HELD:
        built = backend.from_settings(settings)
        load = getattr(built, "load", None)
        if load is not None:
            load()
        _HELD[key] = built
    return _HELD[key]


__all__ = [
    "BACKENDS", "Backend", "LocalBackend", "ModelNotFound", "PermanentError", "RemoteBackend", "TransientError",
    "hold_local_backend", "make_backend",
]  # fmt: skip
