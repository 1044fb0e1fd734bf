"""Length units: how long a response is, counted in chars, words, tokenizer tokens or NLTK word tokens.

A record's length is the sum of its assistant turns' counts (the paper's records have one turn).
A new unit is one module with a `Unit` class plus one line in UNITS.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from longsift.registry import Registry


class Unit(Protocol):
    name: str

    def count(self, texts: Sequence[str]) -> list[int]:
        """One count per text; batched so a unit can amortise its set-up."""
        ...

    def describe(self) -> dict[str, Any]:
        """What exactly was counted, for summaries and manifests."""
        ...


class UnitFactory(Protocol):
    def __call__(self, tokenizer: str | None = None) -> Unit: ...


UNITS: Registry[UnitFactory] = Registry("length unit")
UNITS.register("chars", "longsift.lengths.simple:Chars")
UNITS.register("words", "longsift.lengths.simple:Words")
UNITS.register("tokens", "longsift.lengths.tokens:Tokens")
UNITS.register("nltk", "longsift.lengths.nltk_words:NltkWords")

_CACHE: dict[tuple[str, str | None], Unit] = {}


def get_unit(name: str, tokenizer: str | None = None) -> Unit:
    """The unit `name`, built once per process (tokenizers and Punkt models are costly to load)."""
    key = (name, tokenizer if name == "tokens" else None)
    if key not in _CACHE:
        _CACHE[key] = UNITS.get(name)(tokenizer=key[1])
    return _CACHE[key]


def record_lengths(count: Callable[[Sequence[str]], list[int]], responses: Sequence[Sequence[str]]) -> list[int]:
    """Per record, the sum of its responses' counts (one batched `count` call, e.g. `unit.count`, for all)."""
    flat = [text for turns in responses for text in turns]
    counts = count(flat)
    lengths, at = [], 0
    for turns in responses:
        lengths.append(sum(counts[at : at + len(turns)]))
        at += len(turns)
    return lengths
