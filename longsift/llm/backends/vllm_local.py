"""Offline vLLM through the model engine (longsift.models.vllm_engine), where vllm is installed: it schedules its own
batches, so ours are large."""

from __future__ import annotations

from longsift.llm.backends.transformers_local import EngineBackend


class VLLMBackend(EngineBackend):
    name = "vllm"
    engine = "vllm"
    default_batch_size = min_batch_size = 256
