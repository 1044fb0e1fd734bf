"""Length units: how long a response is, counted in chars, words, tokenizer tokens or NLTK word tokens.

The one registry every stage counts through: `select`, `stats`, `analyze`, `report` and recipe steps take a
unit name (`--by` / `by`, default DEFAULT_UNIT) and get the same `Unit`, the same counts and, for summaries,
the same statistics (`distribution`, PERCENTILES).
A record's length is the sum of its assistant turns' counts (the paper's records have one turn).
A new unit is one module with a class satisfying `Unit` plus one line in UNITS.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from longsift.errors import ConfigError
from longsift.registry import Registry

if TYPE_CHECKING:
    import numpy as np

# chars: exact, dependency-free, the same on every machine and NLTK version, counted in selection's hot loop,
# and the length AlpacaEval reports (the paper's Fig. 1 axis). The paper's selection unit is `--by nltk`
# (`select --preset paper`).
DEFAULT_UNIT = "chars"
PERCENTILES = (10, 25, 50, 75, 90, 95, 99)  # the tail matters: longest-k selects from it
# `--by`'s help everywhere (analyze and report add where their default comes from)
UNITS_HELP = "Length unit: chars, words, nltk (the paper's selection unit) or tokens (with --tokenizer)."
HELP = UNITS_HELP + " Default: chars."


@dataclass(frozen=True)
class FastCount:
    """A unit's per-text counter cheap enough for selection's hot loop (one call per record, no batching)."""

    count_one: Callable[[str], int]
    # > 0: a text of n characters holds at most ceil(n / chars_per_unit) units, so one too short to pass
    # the current cut-off need not be counted at all; 0: no such bound
    chars_per_unit: int = 0
    # a unit that counts many texts faster in one call (a tokenizer's batch encode): the hot loop then
    # counts a block's texts up front (`primed`) and looks each one up
    count_many: Callable[[Sequence[str]], list[int]] | None = None

    def primed(self, texts: Iterable[str]) -> FastCount:
        """A counter that answers `texts` from one `count_many` call (the same counts: a count depends on the
        text alone) and counts any other text with `count_one`."""
        if self.count_many is None:
            return self
        unique = list(dict.fromkeys(texts))
        counts = dict(zip(unique, self.count_many(unique), strict=True))
        count_one = self.count_one

        def count(text: str) -> int:
            n = counts.get(text)
            return count_one(text) if n is None else n

        return FastCount(count, self.chars_per_unit)


@runtime_checkable
class Unit(Protocol):
    name: str
    description: str  # what is counted, in words for people (tables, plot axes)
    fast: FastCount | None  # the hot-loop counter, or None: the unit counts in batches only

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

if TYPE_CHECKING:  # mypy checks that every unit class satisfies Unit; nothing is imported at run time
    from longsift.lengths.nltk_words import NltkWords
    from longsift.lengths.simple import Chars, Words
    from longsift.lengths.tokens import Tokens

    _FACTORIES: tuple[UnitFactory, ...] = (Chars, Words, Tokens, NltkWords)

_CACHE: dict[tuple[str, str | None], Unit] = {}


def get_unit(name: str, tokenizer: str | None = None) -> Unit:
    """The unit `name`, built once per process (tokenizers and Punkt models are costly to load)."""
    key = (name, tokenizer if name == "tokens" else None)
    if key not in _CACHE:
        _CACHE[key] = UNITS.get(name)(tokenizer=key[1])
    return _CACHE[key]


def check_units(by: str | Sequence[str], tokenizer: object = None) -> list[str]:
    """The unit names `by` (one or several), each known; a tokenizer given for none of them is an error
    (it counts only `tokens`: silently counting chars instead would mislead)."""
    names = [by] if isinstance(by, str) else list(by)
    for name in names:
        UNITS.get(name)  # an unknown name fails here, with suggestions
    if tokenizer and "tokens" not in names:
        raise ConfigError(f"a tokenizer counts only --by tokens, not {', '.join(names)}: add --by tokens or drop "
                          "--tokenizer")  # fmt: skip
    return names


def unit_record(unit: Unit) -> dict[str, Any]:
    """The unit as results record it: its name, its description for people, and what `describe` says."""
    return {"name": unit.name, "description": unit.description, **unit.describe()}


def record_lengths(count: Callable[[Sequence[str]], list[int]], responses: Sequence[Sequence[str]]) -> list[int]:
    """Per record, the sum of its responses' counts (one batched `count` call, e.g. `unit.count`, for all)."""
    flat = [text for turns in responses for text in turns]
    counts = count(flat)
    lengths, at = [], 0
    for turns in responses:
        lengths.append(sum(counts[at : at + len(turns)]))
        at += len(turns)
    return lengths


def count_array(unit: Unit, texts: Sequence[str]) -> np.ndarray:
    """`unit.count` as an int64 array, for analyses."""
    import numpy as np

    return np.asarray(unit.count(list(texts)), dtype=np.int64)


def record_array(unit: Unit, responses: Sequence[Sequence[str]]) -> np.ndarray:
    """`record_lengths` in `unit` as an int64 array, for analyses."""
    import numpy as np

    return np.asarray(record_lengths(unit.count, responses), dtype=np.int64)


def distribution(lengths: Sequence[int] | np.ndarray) -> dict[str, Any]:
    """n, mean, std (population), min, max and the PERCENTILES (linear interpolation; p50 is `median`):
    the one summary of a length distribution that stats, analyze and report show.

    An integer array (`stats`' compact lengths) is summarised without a float copy, to the same bits, and
    partially sorted in place (its order is lost)."""
    import numpy as np

    if isinstance(lengths, np.ndarray) and lengths.dtype.kind in "iu" and lengths.size > 0:  # noqa: SIM102
        if lengths.size * max(int(lengths.max()), 1) < 1 << 53:  # an exact sum: no order can change it
            return _integer_distribution(lengths)
    values = np.asarray(lengths, dtype=np.float64)
    if values.size == 0:
        return {"n": 0}
    stats: dict[str, Any] = {"n": int(values.size), "mean": float(values.mean()), "std": float(values.std())}
    stats["min"], stats["max"] = int(values.min()), int(values.max())  # lengths are whole counts
    for q, value in zip(PERCENTILES, np.percentile(values, PERCENTILES), strict=True):
        stats["median" if q == 50 else f"p{q}"] = float(value)
    return stats


def _integer_distribution(values: np.ndarray) -> dict[str, Any]:
    """`distribution` of whole counts, bit for bit, in O(1) extra memory: the same exact sum, numpy's own
    pairwise sum of squared deviations taken chunk by chunk, percentiles partitioned in place."""
    import math

    import numpy as np

    n = int(values.size)
    mean = float(np.add.reduce(values, dtype=np.float64)) / n
    stats: dict[str, Any] = {"n": n, "mean": mean, "std": math.sqrt(_squared_deviations(values, mean, 0, n) / n)}
    stats["min"], stats["max"] = int(values.min()), int(values.max())
    for q, value in zip(PERCENTILES, np.percentile(values, PERCENTILES, overwrite_input=True), strict=True):
        stats["median" if q == 50 else f"p{q}"] = float(value)
    return stats


_CHUNK = 1 << 16


def _squared_deviations(values: np.ndarray, mean: float, start: int, n: int) -> float:
    """sum((values[start:start+n] - mean)**2) as numpy sums a float64 array: it halves a run (at a multiple of
    8) until a run is short, so a run of at most _CHUNK is one numpy sum, and the halves add up the same."""
    import numpy as np

    if n <= _CHUNK:
        deviations = values[start : start + n] - mean
        return float(np.add.reduce(deviations * deviations))
    half = n // 2
    half -= half % 8
    return _squared_deviations(values, mean, start, half) + _squared_deviations(values, mean, start + half, n - half)
