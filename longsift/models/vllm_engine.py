"""The vLLM model runner (`vllm.LLM`, offline), where vllm is installed: the same operations as the transformers
runner for generation and scoring; vLLM schedules its own batches, so callers hand it large ones. Embedding needs a
pooling engine, which this runner does not start: use the transformers runner for that."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from longsift.errors import ConfigError, MissingDependencyError
from longsift.models.hf import continuation_logprobs, scoring_row, stop_token_ids, stripped
from longsift.models.loading import LoadOptions, ModelFolder, check_model_folder
from longsift.models.types import Completion, GenerationParams, ScoredToken, TokenLogprobs, Usage

if TYPE_CHECKING:
    from longsift.templates import Conversation, Template

MIN_BATCH = 256


class VLLMRunner(ModelFolder):
    name = "vllm"

    def __init__(self, model: str, options: LoadOptions | None = None, **engine_args: Any) -> None:
        if importlib.util.find_spec("vllm") is None:  # fail before any work, not at the first batch
            raise MissingDependencyError("vllm", "vllm", "The vllm engine")
        super().__init__(model, options)
        self.engine_args = engine_args
        self._llm: Any = None

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

    def generate_batch(self, prompts: Sequence[tuple[list[int], bool]], params: GenerationParams) -> list[Completion]:
        outputs = self.llm.generate([{"prompt_token_ids": ids} for ids, _ in prompts], self._sampling(params),
                                    use_tqdm=False)  # fmt: skip
        return [replace(_completion(output), prompt_truncated=truncated)
                for output, (_, truncated) in zip(outputs, prompts, strict=True)]  # fmt: skip

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
                yield start + offset, stripped(_completion(result))

    def logprobs(
        self, pairs: Sequence[tuple[str, str]], add_special_tokens: bool = True, batch_size: int = 8
    ) -> list[TokenLogprobs]:
        rows = [scoring_row(self.tokenizer, p, c, add_special_tokens, None) for p, c in pairs]
        scored = self.score_tokens([ids for ids, _, _ in rows], top=1)
        return [continuation_logprobs(tokens[-length:]) for tokens, (_, length, _) in zip(scored, rows, strict=True)]

    def score_tokens(self, rows: Sequence[Sequence[int]], top: int = 0, batch_size: int = 8) -> list[list[ScoredToken]]:
        """From vLLM's prompt_logprobs (one token is generated and discarded)."""
        from vllm import SamplingParams

        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=top)
        results = self.llm.generate([{"prompt_token_ids": list(row)} for row in rows], params, use_tqdm=False)
        return [_scored(list(row), result.prompt_logprobs, top) for row, result in zip(rows, results, strict=True)]

    def embed(self, texts: Sequence[str], normalize: bool = True, batch_size: int = 32) -> Any:
        raise ConfigError("the vllm engine does not embed; use the transformers engine for embeddings")

    def _sampling(self, params: GenerationParams, **extra: Any) -> Any:
        from vllm import SamplingParams

        stop_ids = extra.pop("stop_ids", params.stop_ids)
        return SamplingParams(
            n=params.n, temperature=max(params.temperature, 0.0), top_p=1.0 if params.greedy else (params.top_p or 1.0),
            max_tokens=params.max_new_tokens, seed=params.seed, stop=list(params.stop_strings) or None,
            stop_token_ids=list(stop_ids) if stop_ids else None, **extra,
        )  # fmt: skip


def _completion(output: Any) -> Completion:
    texts = tuple(choice.text for choice in output.outputs)
    generated = sum(len(choice.token_ids) for choice in output.outputs)
    finish = "stop" if output.outputs[0].finish_reason == "stop" else "length"
    usage = Usage(len(output.prompt_token_ids or []), generated)
    return Completion(texts[0], finish, usage, texts, token_ids=tuple(output.outputs[0].token_ids))


def _scored(ids: list[int], prompt_logprobs: list[Any], top: int) -> list[ScoredToken]:
    """prompt_logprobs[t] (None at 0) maps token ids to Logprob(logprob, rank): the prompt's token and the top ones."""
    scored = []
    for position in range(1, len(ids)):
        entry = prompt_logprobs[position]
        ranked = sorted((lp.rank, token, float(lp.logprob)) for token, lp in entry.items() if lp.rank <= top)
        alternatives = tuple((token, value) for _, token, value in ranked)
        scored.append(ScoredToken(ids[position], float(entry[ids[position]].logprob), alternatives))
    return scored
