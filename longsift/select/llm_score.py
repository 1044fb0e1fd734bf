"""Selection by an LLM quality score (`metadata.score`, as `longsift score` writes it).

`llm-score`: AlpaGasus keeps every example rated at or above a threshold (4.5 on its 0-5 accuracy scale); the
paper built its AlpaGasus-1k by sampling 1,000 of those uniformly. Here the sample among eligible records is
exactly `random`'s (bottom-k of a keyed hash of seed and conversation): seeded, independent of input order.
`top-score`: the k highest scores; equal scores go to the earlier source row.

Records without a numeric score (never scored, or scoring failed) are never selected, nor are records below
the threshold; the selection summary counts both under "not selectable".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from longsift.errors import ConfigError
from longsift.records import Example
from longsift.select.random import RandomK
from longsift.select.scoring import Item, Skip

DEFAULT_THRESHOLD = 4.5
NO_SCORE = Skip("no LLM score")


def score_of(example: Example | None) -> float | None:
    """The record's numeric `metadata.score`, or None (missing, not a number, NaN)."""
    value = example.metadata.get("score") if example is not None else None
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    return float(value)


@dataclass(frozen=True)
class ScoreThreshold:
    """Uniform seeded sample of k among records scored >= threshold (all of them without --k)."""

    seed: int = 0
    threshold: float | None = None  # None: DEFAULT_THRESHOLD
    name = "llm-score"
    needs_example = True
    uses_length = False

    def __post_init__(self) -> None:
        if self.threshold is not None and math.isnan(self.threshold):
            raise ConfigError("--threshold must be a number")

    @property
    def cutoff(self) -> float:
        return DEFAULT_THRESHOLD if self.threshold is None else self.threshold

    def keys(self, items: Sequence[Item], lengths: Sequence[int | None]) -> list[Any]:
        below = Skip(f"LLM score below {self.cutoff:g}")
        scores = [score_of(item.example) for item in items]
        eligible = [
            item for item, score in zip(items, scores, strict=True) if score is not None and score >= self.cutoff
        ]
        sample_keys = iter(RandomK(self.seed).keys(eligible, [None] * len(eligible)))
        return [NO_SCORE if score is None else below if score < self.cutoff else next(sample_keys) for score in scores]

    def describe(self) -> dict[str, Any]:
        return {
            "method": self.name, "seed": self.seed, "threshold": self.cutoff,
            "sampling": "uniform among records with metadata.score >= threshold (bottom-k of blake2b(seed, "
                        "conversation), as --method random)",
        }  # fmt: skip


@dataclass(frozen=True)
class TopScore:
    """The k highest `metadata.score`; ties go to the earlier source row."""

    name = "top-score"
    needs_example = True
    uses_length = False

    def keys(self, items: Sequence[Item], lengths: Sequence[int | None]) -> list[Any]:
        return [NO_SCORE if (score := score_of(item.example)) is None else score for item in items]

    def describe(self) -> dict[str, Any]:
        return {"method": self.name, "ties": "equal scores: the earlier source row wins"}
