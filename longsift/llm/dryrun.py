"""What a run would cost before it is paid for: calls, what the cache already holds, tokens in and out, dollars."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from longsift.llm.backends import LocalBackend
from longsift.llm.engine import DEFAULT_OUTPUT_ESTIMATE, Engine
from longsift.llm.tokens import TokenCounter
from longsift.llm.types import ChatRequest, Usage


@dataclass(frozen=True, slots=True)
class DryRunReport:
    backend: str
    model: str
    requests: int
    calls: int  # distinct requests
    cached: int  # answered before: free
    to_send: int
    input_tokens: int  # of the calls to send
    output_tokens: int  # estimated, of the calls to send
    output_basis: str
    token_basis: str
    cost: float | None  # None: no price known for the model
    price_note: str

    def render(self) -> str:
        cost = "unknown" if self.cost is None else f"${self.cost:.4f}"
        return "\n".join([
            f"dry run: {self.backend} model {self.model} (nothing was sent)",
            f"  calls:          {self.calls:,} distinct of {self.requests:,} requests",
            f"  cached:         {self.cached:,} (free)",
            f"  to send:        {self.to_send:,}",
            f"  input tokens:   {self.input_tokens:,} ({self.token_basis})",
            f"  output tokens:  {self.output_tokens:,} (estimated: {self.output_basis})",
            f"  estimated cost: {cost} ({self.price_note})",
        ])  # fmt: skip


def local_tokenizer(engine: Engine) -> str | None:
    """A local model's own tokenizer counts its tokens exactly."""
    model = engine.backend.model
    return model if isinstance(engine.backend, LocalBackend) and Path(model).is_dir() else None


def dry_run(
    requests: Sequence[ChatRequest], engine: Engine, tokens: TokenCounter | None = None,
    expected_output_tokens: int | None = None,
) -> DryRunReport:  # fmt: skip
    """Count without sending. Output tokens: `expected_output_tokens` per call when the task states it, else each
    request's max_tokens (an upper bound)."""
    tokens = tokens or TokenCounter.load(engine.settings.tokenizer or local_tokenizer(engine))
    unique = {engine.key(r): r for r in requests}
    cached = {key for key, entry in engine.lookup(list(unique.values())).items() if entry.ok}
    to_send = [r for key, r in unique.items() if key not in cached]
    input_tokens = sum(tokens.count_messages(r.messages) for r in to_send)
    if expected_output_tokens is not None:
        output_tokens, basis = expected_output_tokens * len(to_send), f"{expected_output_tokens} per call"
    else:
        output_tokens = sum(r.sampling.max_tokens or DEFAULT_OUTPUT_ESTIMATE for r in to_send)
        basis = "max_tokens per call, an upper bound"
    model = engine.backend.key_model()
    price = engine.prices.lookup(model)
    cost = price.cost(Usage(input_tokens, output_tokens)) if price else None
    if price:
        note = f"${price.input:g} / ${price.output:g} per 1M tokens in / out, prices as of {engine.prices.as_of}"
    else:
        note = f"no price known for {model!r}: pass --prices FILE"
    return DryRunReport(
        engine.backend.name, model, len(requests), len(unique), len(cached), len(to_send), input_tokens,
        output_tokens, basis, tokens.describe(), cost, note,
    )  # fmt: skip
