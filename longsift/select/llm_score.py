"""Selection by an LLM quality score (`metadata.score`, written by `longsift score`).

`llm-score`: AlpaGasus keeps every example rated at or above a threshold (4.5 on its 0-5 accuracy scale); the
paper built its AlpaGasus-1k by sampling 1,000 of those uniformly. The sample here is seeded and independent of
input order: each eligible example gets a key hashed from (seed, id), and the k smallest keys win, in O(k)
memory. `top-score`: the k highest scores, ties to the earlier source row.

Both return examples in ascending source-row order. Examples without a numeric score (not scored, or scoring
failed) are never selected; the report counts them.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass

from longsift.records import Example
from longsift.select.base import TopK

DEFAULT_THRESHOLD = 4.5


@dataclass
class ScoreSelection:
    """What a score-based selection saw: the chosen examples and why others were not."""

    examples: list[Example]
    seen: int = 0
    unscored: int = 0
    below_threshold: int = 0

    @property
    def eligible(self) -> int:
        return self.seen - self.unscored - self.below_threshold

    def summary(self) -> str:
        return (
            f"selected {len(self.examples)} of {self.eligible} eligible ({self.seen} seen, "
            f"{self.unscored} without a score, {self.below_threshold} below the threshold)"
        )


def score_of(example: Example) -> float | None:
    value = example.metadata.get("score")
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    return float(value)


def sample_above_threshold(
    records: Iterable[Example], k: int | None, threshold: float = DEFAULT_THRESHOLD, seed: int = 0
) -> ScoreSelection:
    """k examples drawn uniformly (seeded) among those whose score is >= threshold; all of them if k is None."""
    heap: TopK[Example] = TopK(k)
    result = ScoreSelection([])
    for example in records:
        result.seen += 1
        score = score_of(example)
        if score is None:
            result.unscored += 1
        elif score < threshold:
            result.below_threshold += 1
        else:
            # TopK keeps the largest keys, so negate: the k smallest hashes win.
            heap.push(-_sample_key(seed, example.id), example.row, example)
    result.examples = [example for _, _, example in heap.items()]
    return result


def top_by_score(records: Iterable[Example], k: int | None) -> ScoreSelection:
    """The k highest-scored examples; equal scores go to the earlier source row."""
    heap: TopK[Example] = TopK(k)
    result = ScoreSelection([])
    for example in records:
        result.seen += 1
        score = score_of(example)
        if score is None:
            result.unscored += 1
        else:
            heap.push(score, example.row, example)
    result.examples = [example for _, _, example in heap.items()]
    return result


def _sample_key(seed: int, example_id: str) -> int:
    digest = hashlib.blake2b(f"{seed}\0{example_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")
