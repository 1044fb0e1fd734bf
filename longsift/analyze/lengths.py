"""Length distributions of model responses, in any unit of the one registry (`longsift.lengths`).

Units are those `select` counts in: `chars`, `words` (whitespace-separated), `nltk` (the paper's
`len(nltk.word_tokenize(text))`) and `tokens` of a tokenizer (path, hub id, or a `tokenizer.json` file; no
special tokens). Without a choice the unit is `tokens` when a tokenizer is given, else `words`; every result
says which unit it was counted in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from longsift.errors import ConfigError
from longsift.lengths import UNITS, Unit, get_unit, record_lengths
from longsift.records import Generation

PERCENTILES = (10, 25, 50, 75, 90)
_DESCRIPTIONS = {
    "chars": "characters", "words": "whitespace-separated words", "nltk": "NLTK word tokens (nltk.word_tokenize)",
}  # fmt: skip


@dataclass(frozen=True)
class LengthUnit:
    """A registry unit with what analyses need on top: numpy counts and a human description."""

    unit: Unit

    @property
    def name(self) -> str:
        return self.unit.name

    @property
    def description(self) -> str:
        if self.name == "tokens":
            return f"tokens of {self.unit.describe().get('tokenizer')} (no special tokens)"
        return _DESCRIPTIONS.get(self.name, self.name)

    def count(self, texts: Iterable[str]) -> np.ndarray:
        return np.asarray(self.unit.count(list(texts)), dtype=np.int64)

    def count_records(self, responses: Sequence[Sequence[str]]) -> np.ndarray:
        """Per record, the sum of its turns' counts, as `select` measures a record."""
        return np.asarray(record_lengths(self.unit.count, responses), dtype=np.int64)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, **self.unit.describe()}


def length_unit(by: str | None = None, tokenizer: str | Path | None = None) -> LengthUnit:
    """The registry's unit `by` (default: `tokens` when a tokenizer is given, else `words`)."""
    by = by or ("tokens" if tokenizer else "words")
    UNITS.get(by)  # an unknown name fails here, with suggestions
    if tokenizer and by == "tokens" and not Path(tokenizer).exists() and Path(tokenizer).is_absolute():
        raise ConfigError(f"tokenizer {tokenizer} not found (give a tokenizer.json, a tokenizer folder or a hub id)")
    return LengthUnit(get_unit(by, str(tokenizer) if tokenizer else None))


def describe(lengths: Sequence[int] | np.ndarray) -> dict[str, Any]:
    """n, mean, std (population), min, max and the 10/25/50/75/90th percentiles (linear interpolation)."""
    values = np.asarray(lengths, dtype=float)
    if values.size == 0:
        return {"n": 0}
    stats: dict[str, Any] = {"n": int(values.size), "mean": float(values.mean()), "std": float(values.std())}
    stats["min"], stats["max"] = float(values.min()), float(values.max())
    for q, value in zip(PERCENTILES, np.percentile(values, PERCENTILES), strict=True):
        stats["median" if q == 50 else f"p{q}"] = float(value)
    return stats


def histogram(lengths_by_group: dict[str, np.ndarray], bins: int = 20) -> dict[str, Any]:
    """Counts per group on shared edges from 0 to the largest length, so groups can be drawn together."""
    top = max((int(v.max()) for v in lengths_by_group.values() if v.size), default=0)
    edges = np.linspace(0, max(top, 1), bins + 1)
    counts = {name: np.histogram(v, bins=edges)[0].tolist() for name, v in lengths_by_group.items()}
    return {"edges": edges.tolist(), "counts": counts}


def response_lengths(generations: Iterable[Generation], unit: LengthUnit) -> dict[tuple[str, str, str], int]:
    """(model, eval_set, prompt_id) -> response length (the sum over its turns), counted in one batched pass."""
    generations = list(generations)
    counts = unit.count_records([g.outputs for g in generations])
    return {(g.model, g.eval_set, g.prompt_id): int(c) for g, c in zip(generations, counts, strict=True)}


def length_distributions(lengths: dict[tuple[str, str, str], int], bins: int = 20) -> dict[str, Any]:
    """Per model: overall and per-eval-set statistics, plus a shared-edge histogram."""
    by_model: dict[str, list[int]] = defaultdict(list)
    by_set: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for (model, eval_set, _), length in lengths.items():
        by_model[model].append(length)
        by_set[model][eval_set].append(length)
    arrays = {model: np.asarray(values) for model, values in sorted(by_model.items())}
    models = {
        model: {"all": describe(values), "by_eval_set": {s: describe(v) for s, v in sorted(by_set[model].items())}}
        for model, values in arrays.items()
    }
    return {"models": models, "histogram": histogram(arrays, bins)}
