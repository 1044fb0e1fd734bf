"""A local Hugging Face causal LM, in-process and batched: the tokenizer's chat template (a plain fallback when
it has none), left padding, greedy decoding at temperature 0. Loaded lazily, from local files only."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from longsift.errors import ConfigError, MissingDependencyError
from longsift.llm.backends.base import LocalBackend
from longsift.llm.settings import LLMSettings
from longsift.llm.types import ChatRequest, Completion, Usage

DEFAULT_MAX_NEW_TOKENS = 512


def fallback_prompt(messages: Sequence[dict[str, str]]) -> str:
    """For tokenizers without a chat template: role-labelled turns, then an open assistant turn."""
    turns = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n\n".join([*turns, "Assistant:"])


def _dtype_arg(dtype: str) -> dict[str, str]:
    """transformers renamed `torch_dtype` to `dtype` in 4.56."""
    import transformers

    major, minor = (int(part) for part in transformers.__version__.split(".")[:2])
    return {"dtype" if (major, minor) >= (4, 56) else "torch_dtype": dtype}


class TransformersBackend(LocalBackend):
    name = "transformers"

    def __init__(self, model: str, *, batch_size: int = 8, device: str | None = None, dtype: str = "auto") -> None:
        self.model = model
        self.batch_size = batch_size
        self.device = device
        self.dtype = dtype
        self._loaded: tuple[Any, Any] | None = None
        self._lock = threading.Lock()  # one generate at a time (the serve command calls from many threads)

    @classmethod
    def from_settings(cls, settings: LLMSettings) -> TransformersBackend:
        return cls(settings.require_model(), batch_size=settings.batch_size)

    def key_model(self) -> str:
        path = Path(self.model)
        return str(path.resolve()) if path.exists() else self.model

    def load(self) -> tuple[Any, Any]:
        if self._loaded is None:
            try:
                import torch
                from transformers import AutoModelForCausalLM, AutoTokenizer
            except ImportError:
                raise MissingDependencyError("transformers", "train", "The transformers backend") from None
            try:
                tokenizer = AutoTokenizer.from_pretrained(self.model, local_files_only=True)
                model = AutoModelForCausalLM.from_pretrained(
                    self.model, local_files_only=True, **_dtype_arg(self.dtype)
                )
            except (OSError, ValueError) as exc:
                raise ConfigError(f"cannot load the model {self.model!r} from local files: {exc}") from None
            tokenizer.padding_side = "left"  # generation continues at the right edge of every row
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
            device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
            model.to(device)  # type: ignore[arg-type]  # (transformers' stubs)
            self._loaded = (tokenizer, model.eval())
        return self._loaded

    def render(self, request: ChatRequest) -> str:
        tokenizer, _ = self.load()
        messages = request.message_dicts()
        if getattr(tokenizer, "chat_template", None):
            return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
        return fallback_prompt(messages)

    def generate_batch(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        sampling = requests[0].sampling
        if any(r.sampling != sampling for r in requests):
            raise ValueError("a batch must share its sampling parameters")
        with self._lock:
            return self._generate([self.render(r) for r in requests], requests[0])

    def _generate(self, prompts: list[str], first: ChatRequest) -> list[Completion]:
        import torch
        from transformers import GenerationConfig

        tokenizer, model = self.load()
        sampling = first.sampling
        templated = bool(getattr(tokenizer, "chat_template", None))  # the template already holds BOS
        encoded = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=not templated)
        encoded = encoded.to(model.device)
        greedy = sampling.temperature <= 0
        config = GenerationConfig(
            max_new_tokens=sampling.max_tokens or DEFAULT_MAX_NEW_TOKENS, do_sample=not greedy,
            temperature=None if greedy else sampling.temperature, top_p=None if greedy else sampling.top_p,
            top_k=None, num_return_sequences=sampling.n, pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )  # fmt: skip
        if not greedy:
            torch.manual_seed(sampling.seed or 0)
        with torch.inference_mode():
            output = model.generate(**encoded, generation_config=config)
        new_tokens = output[:, encoded["input_ids"].shape[1] :]
        prompt_lengths = encoded["attention_mask"].sum(dim=1).tolist()
        completions = []
        for i, prompt_length in enumerate(prompt_lengths):
            rows = new_tokens[i * sampling.n : (i + 1) * sampling.n]
            texts, reasons, counts = zip(*(self._decode(row, sampling.stop) for row in rows), strict=True)
            completions.append(Completion(texts[0], reasons[0], Usage(int(prompt_length), int(sum(counts))), texts))
        return completions

    def _decode(self, row: Any, stop: tuple[str, ...] | None) -> tuple[str, str, int]:
        tokenizer, _ = self.load()
        ids = row.tolist()
        eos = tokenizer.eos_token_id
        eos_ids = set(eos) if isinstance(eos, list) else {eos}
        end = next((i for i, token in enumerate(ids) if token in eos_ids), None)
        reason = "length" if end is None else "stop"
        ids = ids if end is None else ids[:end]
        text = tokenizer.decode(ids, skip_special_tokens=True)
        for marker in stop or ():
            if marker in text:
                text, reason = text[: text.index(marker)], "stop"
        return text, reason, len(ids) + (0 if end is None else 1)
