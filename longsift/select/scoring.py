"""Score one batch of valid records: filters (empty input, length range), lengths, method keys.

Runs inside worker processes, so everything here is picklable and rebuilds its heavy parts (tokenizer,
Punkt model) once per process through `get_unit`. For `longest` by `nltk` it prunes with cheap bounds:
a record whose upper bound is below the current cut-off cannot be selected, so it is never counted exactly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from longsift.lengths import DEFAULT_UNIT, get_unit, record_lengths
from longsift.lengths.nltk_words import record_bounds
from longsift.records import Example

Counter_ = Callable[[Sequence[str]], list[int]]


@dataclass(slots=True)
class Item:
    """One valid record: its row (local to a block until the parent fixes it up), responses and payload."""

    row: int
    responses: list[str]
    has_input: bool
    example: Example | None = None
    payload: Any = None  # what the parent needs to rebuild the record: the raw JSON line, or the Example


@dataclass(frozen=True, slots=True)
class Skip:
    """A key a method gives a record it must not select (e.g. no LLM score); counted under `reason`."""

    reason: str


class Method(Protocol):
    name: str
    needs_example: bool  # keys need the full Example (not only the response texts)
    uses_length: bool  # the key is the length (then bounds can prune)

    def keys(self, items: Sequence[Item], lengths: Sequence[int | None]) -> list[Any]: ...

    def describe(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Plan:
    """Everything a worker needs to score records, sent with each block."""

    method: Method
    by: str = DEFAULT_UNIT
    tokenizer: str | None = None
    k: int | None = None
    min_length: int | None = None
    max_length: int | None = None
    drop_empty_input: bool = False
    dedup: bool = False
    keep_payload: bool = True
    bounds_only: bool = False  # a first pass that keys records by their NLTK lower bound (see select.run)
    floor: int | None = None  # no record below this length can be selected (known from a first pass)
    lengths_only: bool = False  # keep no records: only every kept record's length, in row order (`stats`)
    own_ids: bool = False  # note (row, line, id) of each kept record with its own id (Ray: ids across shards)

    @property
    def needs_length(self) -> bool:
        return self.method.uses_length or self.min_length is not None or self.max_length is not None

    @property
    def needs_example(self) -> bool:
        return self.method.needs_example or self.dedup

    @property
    def prunes(self) -> bool:
        return self.method.uses_length and self.by == "nltk" and self.k is not None

    def in_range(self, length: int) -> bool:
        return (self.min_length is None or length >= self.min_length) and (
            self.max_length is None or length <= self.max_length
        )


@dataclass(slots=True)
class Scored:
    """A batch's outcome: candidates (key, row, length, payload), dedup digests, and why others dropped out."""

    candidates: list[tuple[Any, int, int | None, Any]] = field(default_factory=list)
    digests: list[tuple[int, bytes]] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)
    exact_counts: int = 0


def has_input(example: Example) -> bool:
    """An Alpaca `input` field when the record has one, else any non-blank user turn."""
    if "input" in example.metadata:
        return bool(str(example.metadata["input"]).strip())
    return any(m.content.strip() for m in example.messages if m.role == "user")


def content_bytes(example: Example) -> bytes:
    """The conversation only (roles and texts): two records are exact duplicates when these are equal."""
    return orjson.dumps([[m.role, m.content] for m in example.messages])


def content_digest(example: Example) -> bytes:
    import hashlib

    return hashlib.blake2b(content_bytes(example), digest_size=16).digest()


def score(
    items: list[Item], plan: Plan, threshold: Any = None, local_top: bool = False, count: Counter_ | None = None
) -> Scored:
    """Filter and score `items`. `threshold`: the key the k-th selected record already has (earlier rows).

    `local_top`: every item here is final (no later duplicate check can drop it), so the batch's own
    k-th best bound is a valid cut-off too, and only the batch's top k need to be returned.
    """
    out = Scored()
    if plan.drop_empty_input:
        kept = [item for item in items if item.has_input]
        out.dropped["empty input"] += len(items) - len(kept)
        items = kept
    if plan.bounds_only:
        lengths = [_sure_lower_bound(item, plan) for item in items]
        items = [item for item, low in zip(items, lengths, strict=True) if low is not None]
        lengths = [low for low in lengths if low is not None]
    elif plan.needs_length:
        unit_count = count or get_unit(plan.by, plan.tokenizer).count
        if plan.prunes:
            lengths = _pruned_lengths(items, plan, threshold, local_top, unit_count, out)
        else:
            lengths = list(record_lengths(unit_count, [item.responses for item in items]))
            out.exact_counts += len(items)
    else:
        lengths = [None] * len(items)
    survivors: list[Item] = []
    survivor_lengths: list[int | None] = []
    for item, length in zip(items, lengths, strict=True):
        if length is None and plan.needs_length:
            out.dropped["pruned"] += 1
        elif length is not None and not plan.in_range(length):
            out.dropped["out of length range"] += 1
        else:
            survivors.append(item)
            survivor_lengths.append(length)
    if plan.dedup:
        out.digests = [(item.row, content_digest(item.example)) for item in survivors if item.example is not None]
    keys = plan.method.keys(survivors, survivor_lengths)
    for key in keys:
        if isinstance(key, Skip):
            out.dropped[key.reason] += 1
    candidates = [
        (key, item.row, length, item.payload if plan.keep_payload else None)
        for key, item, length in zip(keys, survivors, survivor_lengths, strict=True)
        if not isinstance(key, Skip)
        and (threshold is None or key > threshold)  # ties with the k-th selected lose to its earlier row
        and (plan.floor is None or key >= plan.floor)
    ]
    if local_top and plan.k is not None and len(candidates) > plan.k:
        candidates = _best(candidates, plan.k)
    out.candidates = candidates
    return out


def _best(candidates: list[tuple[Any, int, int | None, Any]], k: int) -> list[tuple[Any, int, int | None, Any]]:
    from longsift.select.base import top_k

    best = top_k(((c[0], c[1], c) for c in candidates), k)
    return [entry for _, _, entry in best]


def _sure_lower_bound(item: Item, plan: Plan) -> int | None:
    """The NLTK lower bound of a record certainly in the length range, else None."""
    low, high = record_bounds(item.responses)
    return low if plan.in_range(low) and plan.in_range(high) else None


def _pruned_lengths(
    items: list[Item], plan: Plan, threshold: Any, local_top: bool, count: Counter_, out: Scored
) -> list[int | None]:
    """Exact NLTK lengths only where the record could still be selected; None where it cannot."""
    bounds = [record_bounds(item.responses) for item in items]
    cutoff = threshold if plan.floor is None or threshold is None else max(threshold, plan.floor)
    if cutoff is None:
        cutoff = plan.floor
    if local_top and plan.k is not None:
        # rows certainly in range (by their bounds) and certainly final: k of them at >= their lower bound
        sure = sorted((low for low, high in bounds if plan.in_range(low) and plan.in_range(high)), reverse=True)
        if len(sure) >= plan.k:
            cutoff = sure[plan.k - 1] if cutoff is None else max(cutoff, sure[plan.k - 1])
    lengths: list[int | None] = [None] * len(items)
    exact_at: list[int] = []
    for i, (low, high) in enumerate(bounds):
        if plan.max_length is not None and low > plan.max_length:
            lengths[i] = low  # certainly too long: reported as out of range
        elif plan.min_length is not None and high < plan.min_length:
            lengths[i] = high  # certainly too short
        elif cutoff is None or high >= cutoff:
            exact_at.append(i)
    exact = record_lengths(count, [items[i].responses for i in exact_at])
    for i, length in zip(exact_at, exact, strict=True):
        lengths[i] = length
    out.exact_counts += len(exact_at)
    return lengths
