"""The LLM layer's local backends: a request batch handed to a local model engine (longsift.models), which renders
each chat with the tokenizer's chat template (a plain fallback when it has none), pads on the left and decodes greedily
at temperature 0. Models load lazily, from local files only."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from longsift.llm.backends.base import LocalBackend
from longsift.llm.settings import LLMSettings
from longsift.llm.types import ChatRequest, Completion, Sampling
from longsift.models import GenerationParams, LoadOptions, ModelEngine, open_engine

DEFAULT_MAX_NEW_TOKENS = 512


def generation_params(sampling: Sampling, batch_size: int) -> GenerationParams:
    """The LLM layer's sampling as engine parameters: a sampled batch reseeds (seed 0 when none is set)."""
    greedy = sampling.temperature <= 0
    return GenerationParams(
        max_new_tokens=sampling.max_tokens or DEFAULT_MAX_NEW_TOKENS, temperature=sampling.temperature,
        top_p=sampling.top_p, n=sampling.n, seed=None if greedy else (sampling.seed or 0),
        stop_strings=sampling.stop or (), batch_size=batch_size,
    )  # fmt: skip


class EngineBackend(LocalBackend):
    """A LocalBackend on the model engine named `engine` (longsift.models.ENGINES)."""

    engine: ClassVar[str]
    default_batch_size: ClassVar[int] = 8
    min_batch_size: ClassVar[int] = 1

    def __init__(self, model: str, *, batch_size: int | None = None, device: str | None = None,
                 dtype: str = "auto", **engine_args: Any) -> None:  # fmt: skip
        self.model = model
        self.batch_size = batch_size or self.default_batch_size
        options = LoadOptions(device=device, dtype=dtype, local_files_only=True)
        self.runner: ModelEngine = open_engine(self.engine, model, options, **engine_args)

    @classmethod
    def from_settings(cls, settings: LLMSettings) -> EngineBackend:
        return cls(settings.require_model(), batch_size=max(settings.batch_size, cls.min_batch_size))

    def key_model(self) -> str:
        path = Path(self.model)
        return str(path.resolve()) if path.exists() else self.model

    def load(self) -> ModelEngine:
        return self.runner.load()

    def generate_batch(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        sampling = requests[0].sampling
        if any(r.sampling != sampling for r in requests):
            raise ValueError("a batch must share its sampling parameters")
        params = generation_params(sampling, len(requests))
        return self.runner.chat([r.message_dicts() for r in requests], params)


class TransformersBackend(EngineBackend):
    name = "transformers"
    engine = "transformers"
