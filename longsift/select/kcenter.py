"""`kcenter`: greedy k-center (farthest-point) selection in embedding space (Gonzalez 1985; the core-set selector
of Sener & Savarese, ICLR 2018, used as a diversity baseline for instruction data).

Records are embedded by an encoder (longsift.models.embed: mean-pooled, L2-normalised, cached on disk). The first
center is a seeded random record; each next center is the record farthest from every center chosen so far, until
k. Distances are Euclidean between unit vectors (sqrt(2 - 2 cos): the same order as cosine distance, and a metric,
so the greedy radius is at most twice the optimum). Memory: the n x d embeddings and one n-vector of distances,
no n x n matrix; time O(n k d). Ties go to the earlier source row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from longsift.records import Example


def distances_to(vectors: Any, center: Any) -> Any:
    """Euclidean distance of each unit row to a unit `center` (clamped: rounding can make 2 - 2 cos negative)."""
    import numpy as np

    return np.sqrt(np.clip(2.0 - 2.0 * (vectors @ center), 0.0, None))


def greedy_kcenter(vectors: Any, k: int, first: int = 0) -> tuple[list[int], float]:
    """Indices of k centers by farthest-point traversal from `first`, and the radius: the largest distance from a
    row to its nearest center."""
    import numpy as np

    n = len(vectors)
    if n == 0 or k <= 0:
        return [], float(radius(vectors, [])) if n else 0.0
    centers = [first]
    nearest = distances_to(vectors, vectors[first])
    while len(centers) < min(k, n):
        farthest = int(np.argmax(nearest))  # argmax: the first (earliest row) of equal distances
        if nearest[farthest] <= 0:
            break  # every row already is a center or a duplicate of one
        centers.append(farthest)
        np.minimum(nearest, distances_to(vectors, vectors[farthest]), out=nearest)
    return centers, float(nearest.max())


def radius(vectors: Any, centers: Sequence[int]) -> float:
    """max over rows of the distance to the nearest of `centers` (inf without centers)."""
    import numpy as np

    if not len(centers):
        return float("inf")
    nearest = np.full(len(vectors), np.inf, dtype=np.float64)
    for center in centers:
        np.minimum(nearest, distances_to(vectors, vectors[center]), out=nearest)
    return float(nearest.max()) if len(vectors) else 0.0


@dataclass(frozen=True)
class Embedded:
    """What the embedding selectors share: the encoder and where its vectors are cached."""

    encoder: str | None = None
    cache_dir: str | None = None
    device: str | None = None
    trust_remote_code: bool = False
    batch_size: int = 32

    def vectors(self, examples: Sequence[Example]) -> Any:
        from longsift.models.embed import DEFAULT_ENCODER, embed_texts, record_text
        from longsift.models.loading import LoadOptions

        return embed_texts(
            self.encoder or DEFAULT_ENCODER, [record_text(example) for example in examples], cache_dir=self.cache_dir,
            options=LoadOptions(device=self.device, trust_remote_code=self.trust_remote_code),
            batch_size=self.batch_size,
        )  # fmt: skip


@dataclass(frozen=True)
class KCenter(Embedded):
    seed: int = 0
    name = "kcenter"
    needs_example = True
    uses_length = False
    pool = True  # chooses among the whole pool at once

    def choose(self, examples: Sequence[Example], lengths: Sequence[int | None], k: int | None) -> list[int]:
        import numpy as np

        if not examples:
            return []
        if k is None or k >= len(examples):
            return list(range(len(examples)))
        first = int(np.random.default_rng(self.seed).integers(len(examples)))
        centers, _ = greedy_kcenter(self.vectors(examples), k, first)
        return centers

    def describe(self) -> dict[str, Any]:
        from longsift.models.embed import DEFAULT_ENCODER

        return {
            "method": self.name,
            "seed": self.seed,
            "encoder": self.encoder or DEFAULT_ENCODER,
            "selection": "greedy farthest-point k-center, Euclidean between unit embeddings, seeded first center",
        }
