"""The transformers model runner: one local model, loaded once (longsift.models.loading), and the operations every
stage needs, batched by length:

    runner = TransformersRunner("runs/tiny")
    runner.chat([[{"role": "user", "content": "Hi"}]], GenerationParams(max_new_tokens=32))   # -> [Completion]
    runner.generate_templated(conversations, template, params)   # -> (index, Completion) as batches finish
    runner.logprobs([("Q: 2+2?\nA:", " 4")])                      # -> [TokenLogprobs]
    runner.embed(["a sentence", "another"])                       # -> numpy array (texts x hidden), mean-pooled

Generation pads on the left (every row continues at its right edge); scoring and embedding pad on the right (real
tokens keep their positions, so a text scores and embeds the same alone or in a padded batch).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from longsift.errors import ConfigError
from longsift.models.batching import SHAPE_STEP, length_batches, shape_batches
from longsift.models.loading import LoadOptions, ModelFolder, check_model_folder, load_weights, pick_device
from longsift.models.types import Completion, GenerationParams, ScoredToken, TokenLogprobs, Usage

if TYPE_CHECKING:
    from longsift.templates import Conversation, Template

Encoded = tuple[list[int], bool]  # token ids, and whether the prompt lost its start to fit the context


def fallback_prompt(messages: Sequence[dict[str, str]]) -> str:
    """For tokenizers without a chat template: role-labelled turns, then an open assistant turn."""
    turns = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n\n".join([*turns, "Assistant:"])


def stop_token_ids(tokenizer: Any, tokens: Sequence[str]) -> tuple[int, ...]:
    """The ids of the template's stop tokens that are single tokens of this tokenizer (at least one must be)."""
    ids = []
    for token in tokens:
        token_id = tokenizer.convert_tokens_to_ids(token)
        if token_id is not None and token_id != tokenizer.unk_token_id:
            ids.append(int(token_id))
    if not ids:
        raise ValueError(f"none of the stop tokens {list(tokens)} is a single token of this tokenizer")
    return tuple(dict.fromkeys(ids))


class TransformersRunner(ModelFolder):
    name = "transformers"

    def __init__(self, model: str, options: LoadOptions | None = None) -> None:
        super().__init__(model, options)
        self._model: Any = None
        self._encoder: Any = None
        self._lock = threading.RLock()  # one forward pass at a time (`serve` calls from many threads)

    @property
    def model(self) -> Any:
        """The causal LM, loaded on first use."""
        if self._model is None:
            check_model_folder(self.path)  # a half-saved folder is refused before anything loads
            self.tokenizer  # noqa: B018 - a missing tokenizer fails before the weights load
            self._model = load_weights(self.path, self.options)
        return self._model

    @property
    def encoder(self) -> Any:
        """What embeds: the causal LM's base model when that is loaded, else the folder loaded with AutoModel."""
        if self._model is not None:
            return self._model.base_model
        if self._encoder is None:
            check_model_folder(self.path)
            self.tokenizer  # noqa: B018
            self._encoder = load_weights(self.path, self.options, "AutoModel")
        return self._encoder

    @property
    def device(self) -> Any:
        return self._model.device if self._model is not None else pick_device(self.options.device)

    @property
    def max_context(self) -> int | None:
        return getattr(self.model.config, "max_position_embeddings", None)

    def load(self) -> TransformersRunner:
        self.model  # noqa: B018
        return self

    # generation

    def encode(self, texts: Sequence[str], add_special_tokens: bool, room_for: int | None = None) -> list[Encoded]:
        """Token ids of each text; with `room_for`, a prompt keeps its last tokens so that many new ones fit."""
        encoded = self.tokenizer(list(texts), add_special_tokens=add_special_tokens, verbose=False)["input_ids"]
        if room_for is None or not self.max_context:
            return [(ids, False) for ids in encoded]
        budget = self.max_context - room_for
        if budget < 1:
            raise ValueError(f"max_new_tokens {room_for} leaves no room for a prompt in {self.max_context}")
        return [(ids[-budget:], True) if len(ids) > budget else (ids, False) for ids in encoded]

    def generate(self, prompts: Sequence[Encoded], params: GenerationParams) -> Iterator[tuple[int, Completion]]:
        """Batched by length; yields (index into prompts, completion) as each batch finishes."""
        self._seed(params)
        lengths = [len(ids) for ids, _ in prompts]
        for batch in length_batches(lengths, params.batch_size, params.batch_tokens):
            completions = self._generate_batch([prompts[i] for i in batch], params)
            yield from zip(batch, completions, strict=True)

    def generate_batch(self, prompts: Sequence[Encoded], params: GenerationParams) -> list[Completion]:
        """One batch, in the order given (sampled rows draw from the random stream in that order)."""
        with self._lock:  # the seed and the draws it governs, together
            self._seed(params)
            return self._generate_batch(prompts, params)

    def generate_templated(
        self, conversations: Sequence[Conversation], template: Template, params: GenerationParams
    ) -> Iterator[tuple[int, Completion]]:
        """Generation with one of the project's templates: its prompt text, special tokens and stop tokens; a
        prompt too long for the context keeps its end. Texts are stripped, as the templates' answers are."""
        stops = stop_token_ids(self.tokenizer, template.stop_tokens())
        texts = [template.prompt(conversation) for conversation in conversations]
        encoded = self.encode(texts, template.add_special_tokens, room_for=params.max_new_tokens)
        for index, completion in self.generate(encoded, replace(params, stop_ids=stops)):
            yield index, stripped(completion)

    def chat_prompt(self, messages: Sequence[dict[str, str]]) -> tuple[str, bool]:
        """The prompt text and whether tokenizing it must add special tokens (a chat template holds its own BOS)."""
        if getattr(self.tokenizer, "chat_template", None):
            rendered = self.tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
            return str(rendered), False
        return fallback_prompt(messages), True

    def chat(self, conversations: Sequence[Sequence[dict[str, str]]], params: GenerationParams) -> list[Completion]:
        """One batch of chat completions with the tokenizer's chat template (the fallback when it has none)."""
        rendered = [self.chat_prompt(messages) for messages in conversations]
        add_special = rendered[0][1] if rendered else True
        return self.generate_batch(self.encode([text for text, _ in rendered], add_special), params)

    def _seed(self, params: GenerationParams) -> None:
        if params.seed is not None:
            import torch

            torch.manual_seed(params.seed)

    def _generate_batch(self, prompts: Sequence[Encoded], params: GenerationParams) -> list[Completion]:
        import torch

        tokenizer, model = self.tokenizer, self.model
        with self._lock:
            inputs = tokenizer.pad({"input_ids": [ids for ids, _ in prompts]}, padding=True, return_tensors="pt")
            inputs = inputs.to(model.device)
            with torch.inference_mode():
                output = model.generate(**inputs, generation_config=self._generation_config(params))
        new_tokens = output[:, inputs["input_ids"].shape[1] :].tolist()
        stops = set(self._stop_ids(params))
        n = params.n
        return [
            self._completion(new_tokens[i * n : (i + 1) * n], len(ids), truncated, stops, params.stop_strings)
            for i, (ids, truncated) in enumerate(prompts)
        ]

    def _stop_ids(self, params: GenerationParams) -> tuple[int, ...]:
        if params.stop_ids is not None:
            return params.stop_ids
        eos = self.tokenizer.eos_token_id
        return tuple(eos) if isinstance(eos, list) else (eos,)

    def _generation_config(self, params: GenerationParams) -> Any:
        from transformers import GenerationConfig

        greedy = params.greedy
        return GenerationConfig(
            max_new_tokens=params.max_new_tokens, do_sample=not greedy,
            temperature=None if greedy else params.temperature, top_p=None if greedy else params.top_p, top_k=None,
            num_return_sequences=params.n, eos_token_id=list(self._stop_ids(params)),
            pad_token_id=self.tokenizer.pad_token_id, bos_token_id=self.tokenizer.bos_token_id,
        )  # fmt: skip

    def _completion(
        self, rows: list[list[int]], prompt_tokens: int, truncated: bool, stops: set[int], markers: Sequence[str]
    ) -> Completion:
        decoded = [self._decode(row, stops, markers) for row in rows]
        texts = tuple(text for text, _, _ in decoded)
        usage = Usage(prompt_tokens, sum(count for _, _, count in decoded))
        return Completion(texts[0], decoded[0][1], usage, texts, truncated, tuple(rows[0][: decoded[0][2]]))

    def _decode(self, ids: list[int], stops: set[int], markers: Sequence[str]) -> tuple[str, str, int]:
        """Text up to the first stop token (or stop string), why it ended, and tokens generated (the stop included)."""
        end = next((i for i, token in enumerate(ids) if token in stops), None)
        kept = ids if end is None else ids[:end]
        text = str(self.tokenizer.decode(kept, skip_special_tokens=True))
        reason = "length" if end is None else "stop"
        for marker in markers:
            if marker in text:
                text, reason = text[: text.index(marker)], "stop"
        return text, reason, len(kept) + (0 if end is None else 1)

    # scoring

    def logprobs(
        self, pairs: Sequence[tuple[str, str]], add_special_tokens: bool = True, batch_size: int = 8
    ) -> list[TokenLogprobs]:
        """log p(continuation | prompt) for each (prompt, continuation): the two are tokenized apart and joined, so
        exactly the continuation's tokens are scored; a pair too long for the context loses the prompt's start."""
        rows = [scoring_row(self.tokenizer, p, c, add_special_tokens, self.max_context) for p, c in pairs]
        scored = self.score_tokens([ids for ids, _, _ in rows], top=1, batch_size=batch_size)
        return [continuation_logprobs(tokens[-length:], truncated)
                for tokens, (_, length, truncated) in zip(scored, rows, strict=True)]  # fmt: skip

    def score_tokens(
        self, rows: Sequence[Sequence[int]], top: int = 0, batch_size: int = 8, shape_step: int | None = None
    ) -> list[list[ScoredToken]]:
        """For every token of each row after the first: its log-probability given the tokens before it, and the
        `top` most likely tokens at that position (one forward pass per batch, rows batched by length).

        Padding changes a row's float bits (a batch's shape picks the kernels), so batched scores depend on which
        rows share a batch. With `shape_step` they do not: every pass is `batch_size` rows wide and a multiple of
        `shape_step` tokens long, fixed by each row's own length (batching.shape_batches; a short batch is filled
        with copies of its last row), so a row scores the same bits in any pool, shard or order."""
        results: list[list[ScoredToken]] = [[] for _ in rows]
        lengths = [len(row) for row in rows]
        batches: Iterator[tuple[int | None, list[int]]]
        if shape_step is None:
            batches = ((None, batch) for batch in length_batches(lengths, batch_size))
        else:
            batches = iter(shape_batches(lengths, batch_size, shape_step, self.max_context))
        for width, batch in batches:
            filled = batch if width is None else batch + [batch[-1]] * (batch_size - len(batch))
            logits = self._forward([list(rows[i]) for i in filled], self.model, width)
            for row, index in enumerate(batch):
                results[index] = _scored_tokens(logits[row, : len(rows[index])], list(rows[index]), top)
        return results

    # embeddings

    def embed(self, texts: Sequence[str], normalize: bool = True, batch_size: int = 32) -> Any:
        """Mean of the last hidden states over real tokens (the attention mask), L2-normalised unless asked not;
        a numpy float32 array, one row per text.

        Every pass has a fixed shape, as score_tokens' with `shape_step` (`batch_size` rows, a multiple of
        SHAPE_STEP tokens, a short batch filled with copies of its last row): a text's vector is the same
        bits whatever texts share its batch (the whole pool, one shard of it on Ray, any order)."""
        import numpy as np
        import torch

        self._check_pooling()
        encoder = self.encoder
        limit = self.embedding_max_length()
        ids = self.tokenizer(list(texts), add_special_tokens=True, truncation=True, max_length=limit)["input_ids"]
        vectors = np.zeros((len(ids), encoder.config.hidden_size), dtype=np.float32)
        for width, batch in shape_batches([len(row) for row in ids], batch_size, SHAPE_STEP, limit):
            filled = batch + [batch[-1]] * (batch_size - len(batch))
            hidden, mask = self._hidden([ids[i] for i in filled], encoder, width)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
            if normalize:
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
            vectors[batch] = pooled[: len(batch)].cpu().numpy()
        return vectors

    def _check_pooling(self) -> None:
        """A sentence-transformers folder says how it pools; this runner pools by mean, so it refuses the others."""
        pooling = Path(self.path) / "1_Pooling" / "config.json"
        if pooling.is_file() and not json.loads(pooling.read_text(encoding="utf-8")).get("pooling_mode_mean_tokens"):
            raise ConfigError(f"{pooling}: this model pools otherwise than by mean, which is all the runner does")

    def embedding_max_length(self) -> int | None:
        """sentence-transformers' max_seq_length where the folder has one, else what the tokenizer and model allow."""
        folder = Path(self.path)
        sbert = folder / "sentence_bert_config.json"
        if sbert.is_file():
            return int(json.loads(sbert.read_text(encoding="utf-8"))["max_seq_length"])
        limits = [getattr(self.encoder.config, "max_position_embeddings", None), self.tokenizer.model_max_length]
        known = [int(limit) for limit in limits if isinstance(limit, int) and limit < 1_000_000]
        return min(known) if known else None

    # forward passes, right-padded

    def _padded(self, rows: Sequence[list[int]], device: Any, width: int | None = None) -> tuple[Any, Any]:
        import torch

        width = width or max(len(row) for row in rows)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([row + [pad] * (width - len(row)) for row in rows], device=device)
        mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in rows], device=device)
        return ids, mask

    def _forward(self, rows: Sequence[list[int]], model: Any, width: int | None = None) -> Any:
        import torch

        ids, mask = self._padded(rows, model.device, width)
        with self._lock, torch.inference_mode():
            return model(input_ids=ids, attention_mask=mask).logits.float()

    def _hidden(self, rows: Sequence[list[int]], encoder: Any, width: int | None = None) -> tuple[Any, Any]:
        import torch

        ids, mask = self._padded(rows, encoder.device, width)
        with self._lock, torch.inference_mode():
            hidden = encoder(input_ids=ids, attention_mask=mask).last_hidden_state.float()
        return hidden, mask.unsqueeze(-1).to(hidden.dtype)


def _scored_tokens(logits: Any, ids: list[int], top: int) -> list[ScoredToken]:
    """Position t's logits predict token t + 1."""
    import torch

    logprobs = torch.log_softmax(logits[:-1], dim=-1)
    targets = torch.tensor(ids[1:], device=logits.device)
    chosen = logprobs.gather(1, targets.unsqueeze(1)).squeeze(1).tolist()
    best = logprobs.topk(top, dim=-1) if top else None
    tops = [tuple(zip(i, v, strict=True)) for i, v in zip(best.indices.tolist(), best.values.tolist(), strict=True)] \
        if best is not None else [()] * len(chosen)  # fmt: skip
    return [
        ScoredToken(token, value, alternatives)
        for token, value, alternatives in zip(ids[1:], chosen, tops, strict=True)
    ]


def scoring_row(
    tokenizer: Any, prompt: str, continuation: str, add_special_tokens: bool, limit: int | None
) -> tuple[list[int], int, bool]:
    """Prompt ids + continuation ids (tokenized apart), the continuation's length, and whether the prompt lost its
    start to fit `limit` tokens. An empty prompt conditions on BOS."""
    prompt_ids = tokenizer(prompt, add_special_tokens=add_special_tokens)["input_ids"]
    continuation_ids = tokenizer(continuation, add_special_tokens=False)["input_ids"]
    if not continuation_ids:
        raise ValueError("an empty continuation has no tokens to score")
    if not prompt_ids:
        if tokenizer.bos_token_id is None:
            raise ValueError("an empty prompt needs a BOS token to condition on, and this tokenizer has none")
        prompt_ids = [tokenizer.bos_token_id]
    ids = prompt_ids + continuation_ids
    limit = limit or len(ids)
    if len(continuation_ids) >= limit:
        raise ValueError(f"a continuation of {len(continuation_ids)} tokens does not fit the context of {limit}")
    return ids[-limit:], len(continuation_ids), len(ids) > limit


def continuation_logprobs(tokens: Sequence[ScoredToken], truncated: bool = False) -> TokenLogprobs:
    """The continuation's scored tokens as TokenLogprobs; greedy when each was the most likely (top-1) token."""
    greedy = all(t.top and t.top[0][0] == t.token_id for t in tokens)
    return TokenLogprobs(tuple(t.token_id for t in tokens), tuple(t.logprob for t in tokens), greedy, truncated)


def stripped(completion: Completion) -> Completion:
    return replace(completion, text=completion.text.strip(), choices=tuple(t.strip() for t in completion.choices))
