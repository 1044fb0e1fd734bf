"""`kcenter`: greedy k-center (farthest-point) selection in embedding space (Gonzalez 1985; the core-set selector
of Sener & Savarese, ICLR 2018, used as a diversity baseline for instruction data).

Records are embedded by an encoder (longsift.models.embed: mean-pooled, L2-normalised, cached on disk). The first
center is a seeded random record; each next center is the record farthest from every center chosen so far, until
k. Distances are Euclidean between unit vectors (sqrt(2 - 2 cos): the same order as cosine distance, and a metric,
so the greedy radius is at most twice the optimum). Memory: the n x d embeddings and one n-vector of distances,
no n x n matrix; time O(n k d). Ties go to the earlier source row. The embedding selectors split into a map
(`Embedded.map`: each record's score and vector, record by record) and a choice over all of them (`pick`), so on
Ray the map runs per shard on the actors and the choice in the driver (exec/ray_pool.py).
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


@dataclass
class Mapped:
    """The per-record part of an embedding selection (its map; on Ray, one per shard): each record's score (None:
    none, so no vector and never chosen) and the vectors of the records with one, in record order. What chooses
    from it (greedy k-center, DEITA's walk) runs over every record at once: in the driver on Ray."""

    scores: list[float | None]
    vectors: Any  # float32, one row per record whose score is not None

    def take(self, positions: Sequence[int]) -> Mapped:
        """The records at `positions` (ascending), as if only they had been mapped."""
        import numpy as np

        rows = np.cumsum([score is not None for score in self.scores]) - 1  # record -> its vector's row
        keep = [int(rows[p]) for p in positions if self.scores[p] is not None]
        return Mapped([self.scores[p] for p in positions], self.vectors[keep])

    @staticmethod
    def joined(parts: Sequence[Mapped]) -> Mapped:
        import numpy as np

        scores = [score for part in parts for score in part.scores]
        shaped = [part.vectors for part in parts if len(part.vectors)]
        return Mapped(scores, np.concatenate(shaped) if shaped else np.zeros((0, 0), dtype=np.float32))


@dataclass(frozen=True)
class Embedded:
    """What the embedding selectors share: the encoder and where its vectors are cached."""

    encoder: str | None = None
    cache_dir: str | None = None
    device: str | None = None
    trust_remote_code: bool = False
    batch_size: int = 32
    pool = True  # chooses among the whole pool at once
    needs_example = True

    def load_options(self) -> Any:
        from longsift.models.loading import LoadOptions

        return LoadOptions(device=self.device, trust_remote_code=self.trust_remote_code)

    def prepare(self) -> None:
        """Load the encoder in this process (once: runner_for keeps it); a Ray actor does so before its first shard."""
        from longsift.models.embed import DEFAULT_ENCODER, runner_for

        runner_for(self.encoder or DEFAULT_ENCODER, self.load_options()).encoder  # noqa: B018

    def vectors(self, examples: Sequence[Example]) -> Any:
        from longsift.models.embed import DEFAULT_ENCODER, embed_texts, record_text

        return embed_texts(
            self.encoder or DEFAULT_ENCODER, [record_text(example) for example in examples], cache_dir=self.cache_dir,
            options=self.load_options(), batch_size=self.batch_size,
        )  # fmt: skip

    def scores(self, examples: Sequence[Example], lengths: Sequence[int | None]) -> list[float | None]:
        return [0.0] * len(examples)  # every record can be chosen

    def map(self, examples: Sequence[Example], lengths: Sequence[int | None]) -> Mapped:
        """Each record's score and the vectors of those with one (a vector depends on its record alone)."""
        scores = self.scores(examples, lengths)
        return Mapped(scores, self.vectors([e for e, s in zip(examples, scores, strict=True) if s is not None]))

    def choose(self, examples: Sequence[Example], lengths: Sequence[int | None], k: int | None) -> list[int]:
        return self.pick(self.map(examples, lengths), k)

    def pick(self, mapped: Mapped, k: int | None) -> list[int]:
        raise NotImplementedError


@dataclass(frozen=True)
class KCenter(Embedded):
    seed: int = 0
    name = "kcenter"
    uses_length = False

    def choose(self, examples: Sequence[Example], lengths: Sequence[int | None], k: int | None) -> list[int]:
        if k is None or k >= len(examples):
            return list(range(len(examples)))  # every record: nothing to embed
        return self.pick(self.map(examples, lengths), k)

    def pick(self, mapped: Mapped, k: int | None) -> list[int]:
        import numpy as np

        n = len(mapped.scores)
        if k is None or k >= n:
            return list(range(n))
        first = int(np.random.default_rng(self.seed).integers(n))
        centers, _ = greedy_kcenter(mapped.vectors, k, first)
        return centers

    def describe(self) -> dict[str, Any]:
        from longsift.models.embed import DEFAULT_ENCODER

        return {
            "method": self.name,
            "seed": self.seed,
            "encoder": self.encoder or DEFAULT_ENCODER,
            "selection": "greedy farthest-point k-center, Euclidean between unit embeddings, seeded first center",
        }
