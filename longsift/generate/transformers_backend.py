"""In-process Hugging Face generation: batched, left-padded, prompts sorted by length, greedy by default.

Prompts are tokenized once, sorted longest first (a batch holds prompts of similar length, so little padding, and the
memory peak shows in the first batch rather than at the end), generated batch by batch, and yielded with their
original index so the caller restores the order. A prompt too long for the model's context keeps its last tokens and
is marked `prompt_truncated`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from longsift.generate.base import Completion, SamplingOptions
from longsift.templates import load_template


class TransformersBackend:
    name = "transformers"

    def __init__(
        self, model: str, template: str | None = None, dtype: str = "auto", device: str | None = None,
        trust_remote_code: bool = False,
    ) -> None:  # fmt: skip
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(model, trust_remote_code=trust_remote_code)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.unk_token or self.tokenizer.eos_token
        self.template = load_template(model, self.tokenizer, template)
        torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
        loaded: Any = AutoModelForCausalLM.from_pretrained(
            model, dtype=torch_dtype, trust_remote_code=trust_remote_code
        )
        self.device: str = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model: Any = loaded.to(self.device).eval()
        self.stop_ids = stop_token_ids(self.tokenizer, self.template.stop_tokens())
        self.max_context = getattr(self.model.config, "max_position_embeddings", None)

    def encode(self, prompts: Sequence[str], max_new_tokens: int) -> list[tuple[list[int], bool]]:
        encoded = self.tokenizer(list(prompts), add_special_tokens=self.template.add_special_tokens, verbose=False)[
            "input_ids"
        ]
        budget = self.max_context - max_new_tokens if self.max_context else None
        if budget is not None and budget < 1:
            raise ValueError(f"max_new_tokens {max_new_tokens} leaves no room for a prompt in {self.max_context}")
        return [(ids[-budget:], True) if budget and len(ids) > budget else (ids, False) for ids in encoded]

    def complete(self, prompts: Sequence[str], options: SamplingOptions) -> Iterator[tuple[int, Completion]]:
        encoded = self.encode(prompts, options.max_new_tokens)
        order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i][0]))
        config = self._generation_config(options)
        self.torch.manual_seed(options.seed)
        for batch in batches(order, [len(encoded[i][0]) for i in range(len(encoded))], options):
            inputs = self.tokenizer.pad(
                {"input_ids": [encoded[i][0] for i in batch]}, padding=True, return_tensors="pt"
            ).to(self.device)
            with self.torch.inference_mode():
                output = self.model.generate(**inputs, generation_config=config)
            new_tokens = output[:, inputs["input_ids"].shape[1] :].tolist()
            for row, index in enumerate(batch):
                ids, truncated = encoded[index]
                yield index, self._completion(new_tokens[row], len(ids), truncated)

    def _completion(self, tokens: list[int], prompt_tokens: int, truncated: bool) -> Completion:
        stop = next((i for i, token in enumerate(tokens) if token in self.stop_ids), None)
        kept = tokens if stop is None else tokens[:stop]
        text = str(self.tokenizer.decode(kept, skip_special_tokens=True)).strip()
        new = len(tokens) if stop is None else stop + 1
        return Completion(text, "length" if stop is None else "stop", new, prompt_tokens, truncated)

    def _generation_config(self, options: SamplingOptions) -> Any:
        from transformers import GenerationConfig

        sampling = {} if options.greedy else {"temperature": options.temperature, "top_p": options.top_p}
        return GenerationConfig(
            max_new_tokens=options.max_new_tokens, do_sample=not options.greedy, eos_token_id=self.stop_ids,
            pad_token_id=self.tokenizer.pad_token_id, bos_token_id=self.tokenizer.bos_token_id, **sampling,
        )  # fmt: skip


def batches(order: Sequence[int], lengths: Sequence[int], options: SamplingOptions) -> Iterator[list[int]]:
    """Consecutive runs of `order` (longest prompt first) of at most batch_size prompts and batch_tokens tokens."""
    batch: list[int] = []
    for index in order:
        longest = lengths[batch[0]] if batch else lengths[index]
        full = len(batch) >= options.batch_size
        too_big = options.batch_tokens is not None and batch and longest * (len(batch) + 1) > options.batch_tokens
        if full or too_big:
            yield batch
            batch = []
        batch.append(index)
    if batch:
        yield batch


def stop_token_ids(tokenizer: Any, tokens: Sequence[str]) -> list[int]:
    ids = []
    for token in tokens:
        token_id = tokenizer.convert_tokens_to_ids(token)
        if token_id is not None and token_id != tokenizer.unk_token_id:
            ids.append(int(token_id))
    if not ids:
        raise ValueError(f"none of the stop tokens {list(tokens)} is a single token of this tokenizer")
    return list(dict.fromkeys(ids))
