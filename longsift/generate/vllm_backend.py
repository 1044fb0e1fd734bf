"""vLLM offline engine (`--backend vllm`): same prompts, template and stop tokens; vLLM batches internally."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal

from longsift.errors import MissingDependencyError
from longsift.generate.base import Completion, SamplingOptions
from longsift.generate.transformers_backend import stop_token_ids
from longsift.templates import load_template


class VLLMBackend:
    name = "vllm"

    def __init__(
        self, model: str, template: str | None = None, dtype: str = "auto", device: str | None = None,
        trust_remote_code: bool = False,
    ) -> None:  # fmt: skip
        try:
            import vllm
        except ImportError as exc:
            raise MissingDependencyError("vllm", "vllm", "--backend vllm") from exc
        from transformers import AutoTokenizer

        self.vllm = vllm
        self.tokenizer = AutoTokenizer.from_pretrained(model, trust_remote_code=trust_remote_code)
        self.template = load_template(model, self.tokenizer, template)
        self.stop_ids = stop_token_ids(self.tokenizer, self.template.stop_tokens())
        self.engine: Any = vllm.LLM(model=model, dtype=dtype, trust_remote_code=trust_remote_code)

    def complete(self, prompts: Sequence[str], options: SamplingOptions) -> Iterator[tuple[int, Completion]]:
        params = self.vllm.SamplingParams(
            max_tokens=options.max_new_tokens, temperature=max(options.temperature, 0.0),
            top_p=options.top_p if not options.greedy else 1.0, seed=options.seed, stop_token_ids=self.stop_ids,
            skip_special_tokens=True,
        )  # fmt: skip
        add_special = self.template.add_special_tokens
        token_prompts = [
            {"prompt_token_ids": self.tokenizer(p, add_special_tokens=add_special)["input_ids"]} for p in prompts
        ]
        for start in range(0, len(prompts), max(options.batch_size, 256)):
            chunk = token_prompts[start : start + max(options.batch_size, 256)]
            for offset, result in enumerate(self.engine.generate(chunk, params, use_tqdm=False)):
                out = result.outputs[0]
                finish: Literal["stop", "length"] = "stop" if out.finish_reason == "stop" else "length"
                completion = Completion(out.text.strip(), finish, len(out.token_ids), len(result.prompt_token_ids))
                yield start + offset, completion
