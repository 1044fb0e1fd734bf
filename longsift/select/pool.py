"""Selections that need the whole pool at once: a method that chooses among all records (kcenter, diverse), or a
chain of filters (--where, dedup-minhash, dedup-semantic) before any method.

The source is read once with the plan's own filters (length range, empty input, exact dedup) and every record
that passes is kept, in source order; the filters then run in chain order, and the method chooses last: a pool
method by its `choose`, any other by its keys and the same top-k as a streamed selection (ties: the earlier row).
Memory: the records that pass the plan's filters (plus, for embedding methods, their vectors).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from longsift.records import Example
from longsift.select.base import top_k
from longsift.select.scan import Outcome, materialize
from longsift.select.scoring import Item, Plan, Skip, has_input


@dataclass
class KeepAll:
    """Every record, keyed alike: the pool is read whole and chosen from afterwards."""

    uses_length: bool = False
    name: str = "keep-all"
    needs_example: bool = False

    def keys(self, items: Sequence[Item], lengths: Sequence[int | None]) -> list[Any]:
        return [0] * len(items)

    def describe(self) -> dict[str, Any]:
        return {"method": self.name}


def select_pool(
    plan: Plan, steps: Sequence[Any], source: Any, **read: Any
) -> tuple[Outcome, str, list[Example], list[int | None]]:
    from longsift.select import run

    uses_length = plan.method.uses_length or any(getattr(step, "uses_length", False) for step in steps)
    whole = dataclasses.replace(plan, method=KeepAll(uses_length), k=None, keep_payload=True)
    outcome, name = run(whole, source, **read)
    examples, lengths = materialize(outcome, name)
    for step in steps:
        kept = keep_mask(step, examples, lengths)
        outcome.dropped[f"filtered by {describe_step(step)}"] += kept.count(False)
        examples = [e for e, keep in zip(examples, kept, strict=True) if keep]
        lengths = [n for n, keep in zip(lengths, kept, strict=True) if keep]
    chosen, scores = choose(plan.method, examples, lengths, plan.k, outcome)
    key = getattr(plan.method, "metadata_key", None)
    picked = [examples[i].with_metadata(**{key: scores[i]}) if key else examples[i] for i in chosen]
    return outcome, name, picked, [lengths[i] for i in chosen]


def keep_mask(step: Any, examples: list[Example], lengths: list[int | None]) -> list[bool]:
    if hasattr(step, "keep"):
        return list(step.keep(examples, lengths))
    return [bool(step(example, length)) for example, length in zip(examples, lengths, strict=True)]


def describe_step(step: Any) -> str:
    return f"where {step.text}" if hasattr(step, "text") else str(step.name)


def choose(
    method: Any, examples: list[Example], lengths: list[int | None], k: int | None, outcome: Outcome
) -> tuple[list[int], dict[int, Any]]:
    """Indices of the chosen records in ascending order, and their keys (for the method's metadata key)."""
    if hasattr(method, "choose"):
        return sorted(method.choose(examples, lengths, k)), {}
    items = [Item(e.row, e.responses, has_input(e), e, e) for e in examples]
    keys = method.keys(items, lengths)
    for key in keys:
        if isinstance(key, Skip):
            outcome.dropped[key.reason] += 1
    best = top_k(((key, e.row, i) for i, (key, e) in enumerate(zip(keys, examples, strict=True))
                  if not isinstance(key, Skip)), k)  # fmt: skip
    return sorted(i for _, _, i in best), {i: key for key, _, i in best}
