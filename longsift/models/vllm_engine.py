"""The vLLM model runner (`vllm.LLM`, offline), where vllm is installed: the same operations as the transformers
runner for generation and scoring; vLLM schedules its own batches, so callers hand it large ones. Embedding needs a
pooling engine, which this runner does not start: use the transformers runner for that."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from longsift.errors import ConfigError, MissingDependencyError
from longsift.models.hf import stop_token_ids
from longsift.models.loading import LoadOptions, check_model_folder, load_tokenizer
from longsift.models.types import Completion, GenerationParams, TokenLogprobs, Usage

if TYPE_CHECKING:
    from longsift.templates import Conversation, Template

MIN_BATCH = 256


class VLLMRunner:
    name = "vllm"

    def __init__(self, model: str, options: LoadOptions | None = None, **engine_args: Any) -> None:
        if importlib.util.find_spec("vllm") is None:  # fail before any work, not at the first batch
            raise MissingDependencyError("vllm", "vllm", "The vllm engine")
        self.path = str(model)
        self.options = options or LoadOptions()
        self.engine_args = engine_args
        self._tokenizer: Any = None
        self._llm: Any = None

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.path, self.options)
        return self._tokenizer

    @property
    def llm(self) -> Any:
        if self._llm is None:
            from vllm import LLM

            check_model_folder(self.path)
            try:
                self._llm = LLM(model=self.path, dtype=self.options.dtype,
                                trust_remote_code=self.options.trust_remote_code, **self.engine_args)  # fmt: skip
            except (OSError, ValueError) as exc:
                raise ConfigError(f"vllm cannot load {self.path!r}: {exc}") from None
        return self._llm

    def load(self) -> VLLMRunner:
        self.llm  # noqa: B018
        return self

    def chat(self, conversations: Sequence[Sequence[dict[str, str]]], params: GenerationParams) -> list[Completion]:
        outputs = self.llm.chat([list(c) for c in conversations], sampling_params=self._sampling(params),
                                use_tqdm=False)  # fmt: skip
        return [_completion(output) for output in outputs]

    def generate_templated(
        self, conversations: Sequence[Conversation], template: Template, params: GenerationParams
    ) -> Iterator[tuple[int, Completion]]:
        stops = stop_token_ids(self.tokenizer, template.stop_tokens())
        sampling = self._sampling(params, stop_ids=stops, skip_special_tokens=True)
        prompts = [
            {"prompt_token_ids": self.tokenizer(template.prompt(c), add_special_tokens=template.add_special_tokens)[
                "input_ids"]}
            for c in conversations
        ]  # fmt: skip
        size = max(params.batch_size, MIN_BATCH)
        for start in range(0, len(prompts), size):
            results = self.llm.generate(prompts[start : start + size], sampling, use_tqdm=False)
            for offset, result in enumerate(results):
                completion = _completion(result)
                yield start + offset, Completion(completion.text.strip(), completion.finish_reason, completion.usage)

    def logprobs(
        self, pairs: Sequence[tuple[str, str]], add_special_tokens: bool = True, batch_size: int = 8
    ) -> list[TokenLogprobs]:
        """From vLLM's prompt_logprobs over prompt + continuation (one generated token, discarded)."""
        from vllm import SamplingParams

        rows = []
        for prompt, continuation in pairs:
            prompt_ids = self.tokenizer(prompt, add_special_tokens=add_special_tokens)["input_ids"]
            continuation_ids = self.tokenizer(continuation, add_special_tokens=False)["input_ids"]
            if not prompt_ids or not continuation_ids:
                raise ValueError("both the prompt and the continuation need at least one token")
            rows.append((prompt_ids + continuation_ids, len(continuation_ids)))
        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1)
        results = self.llm.generate([{"prompt_token_ids": ids} for ids, _ in rows], params, use_tqdm=False)
        return [
            _scored(ids, length, result.prompt_logprobs) for (ids, length), result in zip(rows, results, strict=True)
        ]

    def embed(self, texts: Sequence[str], normalize: bool = True, batch_size: int = 32) -> Any:
        raise ConfigError("the vllm engine does not embed; use the transformers engine for embeddings")

    def _sampling(self, params: GenerationParams, **extra: Any) -> Any:
        from vllm import SamplingParams

        stop_ids = extra.pop("stop_ids", params.stop_ids)
        return SamplingParams(
            n=params.n, temperature=max(params.temperature, 0.0), top_p=params.top_p or 1.0,
            max_tokens=params.max_new_tokens, seed=params.seed, stop=list(params.stop_strings) or None,
            stop_token_ids=list(stop_ids) if stop_ids else None, **extra,
        )  # fmt: skip


def _completion(output: Any) -> Completion:
    texts = tuple(choice.text for choice in output.outputs)
    generated = sum(len(choice.token_ids) for choice in output.outputs)
    finish = "stop" if output.outputs[0].finish_reason == "stop" else "length"
    return Completion(texts[0], finish, Usage(len(output.prompt_token_ids or []), generated), texts)


def _scored(ids: list[int], length: int, prompt_logprobs: list[Any]) -> TokenLogprobs:
    """prompt_logprobs[t] maps token ids to Logprob(logprob, rank) for position t (None at position 0)."""
    targets = ids[len(ids) - length :]
    entries = prompt_logprobs[len(ids) - length :]
    values = tuple(float(entry[token].logprob) for entry, token in zip(entries, targets, strict=True))
    greedy = all(entry[token].rank == 1 for entry, token in zip(entries, targets, strict=True))
    return TokenLogprobs(tuple(targets), values, greedy)
