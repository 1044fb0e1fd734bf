"""Offline vLLM (`vllm.LLM`), where the package is installed: it schedules its own batches, so ours are large."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any

from longsift.errors import ConfigError, MissingDependencyError
from longsift.llm.backends.base import LocalBackend
from longsift.llm.settings import LLMSettings
from longsift.llm.types import ChatRequest, Completion, Usage


class VLLMBackend(LocalBackend):
    name = "vllm"

    def __init__(self, model: str, *, batch_size: int = 256, **engine_args: Any) -> None:
        if importlib.util.find_spec("vllm") is None:  # fail before any work, not at the first batch
            raise MissingDependencyError("vllm", "vllm", "The vllm backend")
        self.model = model
        self.batch_size = batch_size
        self.engine_args = engine_args
        self._llm: Any = None

    @classmethod
    def from_settings(cls, settings: LLMSettings) -> VLLMBackend:
        return cls(settings.require_model(), batch_size=max(settings.batch_size, 256))

    def load(self) -> Any:
        if self._llm is None:
            from vllm import LLM

            try:
                self._llm = LLM(model=self.model, trust_remote_code=False, **self.engine_args)
            except (OSError, ValueError) as exc:
                raise ConfigError(f"vllm cannot load {self.model!r}: {exc}") from None
        return self._llm

    def generate_batch(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        from vllm import SamplingParams

        llm = self.load()
        params = [
            SamplingParams(
                n=r.sampling.n,
                temperature=r.sampling.temperature,
                top_p=r.sampling.top_p or 1.0,
                max_tokens=r.sampling.max_tokens,
                seed=r.sampling.seed,
                stop=list(r.sampling.stop or []),
            )  # fmt: skip
            for r in requests
        ]
        outputs = llm.chat([r.message_dicts() for r in requests], sampling_params=params, use_tqdm=False)
        completions = []
        for output in outputs:
            texts = tuple(choice.text for choice in output.outputs)
            generated = sum(len(choice.token_ids) for choice in output.outputs)
            usage = Usage(len(output.prompt_token_ids or []), generated)
            completions.append(Completion(texts[0], output.outputs[0].finish_reason, usage, texts))
        return completions
