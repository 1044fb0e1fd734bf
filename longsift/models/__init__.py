"""The one runner for local models. An engine is loaded once (longsift.models.loading: from_pretrained, offline
for local folders, no repository code unless asked, pad token, device and dtype) and offers what every stage needs:

    chat(conversations, params)                     chat completions with the tokenizer's chat template
    generate_templated(conversations, template, params)  the project's templates (longsift.templates)
    logprobs([(prompt, continuation)])              log p(continuation | prompt), per token and summed
    embed(texts)                                    mean-pooled, normalised embeddings

The LLM layer's local backends, `generate` and `serve` are adapters on these engines. Entries are lazy
"module:attr" strings: torch, transformers and vllm load only when an engine is opened.
"""

from __future__ import annotations

from collections.abc import Callable

from longsift.models.loading import LoadOptions
from longsift.models.types import Completion, GenerationParams, ModelEngine, TokenLogprobs, Usage
from longsift.registry import Registry

ENGINES: Registry[Callable[..., ModelEngine]] = Registry("local model engine")
ENGINES.register("transformers", "longsift.models.hf:TransformersRunner")
ENGINES.register("vllm", "longsift.models.vllm_engine:VLLMRunner")


def open_engine(name: str, model: str, options: LoadOptions | None = None, **engine_args: object) -> ModelEngine:
    """The engine `name` for `model` (nothing loads until an operation needs it)."""
    return ENGINES.get(name)(str(model), options, **engine_args)


__all__ = [
    "ENGINES",
    "Completion",
    "GenerationParams",
    "LoadOptions",
    "ModelEngine",
    "TokenLogprobs",
    "Usage",
    "open_engine",
]
