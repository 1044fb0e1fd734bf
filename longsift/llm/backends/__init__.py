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


def make_backend(settings: LLMSettings) -> Backend:
    return BACKENDS.get(settings.backend).from_settings(settings)


__all__ = [
    "BACKENDS", "Backend", "LocalBackend", "ModelNotFound", "PermanentError", "RemoteBackend", "TransientError",
    "make_backend",
]  # fmt: skip
