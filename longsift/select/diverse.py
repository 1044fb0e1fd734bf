"""`diverse`: DEITA's score-first, diversity-aware selection, its "Repr filter" (Liu et al., ICLR 2024, "What
Makes Good Data for Alignment?").

Records are walked from the best score down (ties: the earlier source row); a record is kept only if its cosine
distance to every record kept so far is above `min_distance` (DEITA's default: cosine similarity below 0.9, i.e.
distance above 0.1), until k are kept. The score is `score_field`: `length` (or `longest`: the response length in
the --by unit), `llm-score` (or `score`: `metadata.score`), `ifd` (`metadata.ifd`, or computed with --model), or
any numeric metadata field. Records without a numeric score are not selectable. Memory: the n x d embeddings and
the kept k x d; one k-vector of similarities per record walked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from longsift.errors import ConfigError
from longsift.records import Example
from longsift.select.kcenter import Embedded, Mapped

LENGTH_FIELDS = ("length", "longest")
SCORE_ALIASES = {"llm-score": "score", "llm_score": "score"}


def numeric(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    return float(value)


def score_values(
    field: str, examples: Sequence[Example], lengths: Sequence[int | None], ifd: Any = None
) -> list[float | None]:
    """Each record's score by `field` (None: it has none)."""
    if field in LENGTH_FIELDS:
        return [None if length is None else float(length) for length in lengths]
    key = SCORE_ALIASES.get(field, field)
    values = [numeric(example.metadata.get(key)) for example in examples]
    if key == "ifd" and ifd is not None and any(value is None for value in values):
        computed = ifd.scores(examples)
        values = [v if v is not None else (c if isinstance(c, float) else None)
                  for v, c in zip(values, computed, strict=True)]  # fmt: skip
    return values


def walk(vectors: Any, order: Sequence[int], k: int | None, min_distance: float) -> list[int]:
    """Indices kept walking `order`: each at cosine distance > min_distance from all kept before it."""
    import numpy as np

    limit = len(order) if k is None else k
    kept: list[int] = []
    kept_vectors = np.zeros((max(limit, 1), vectors.shape[1] if vectors.ndim == 2 else 0), dtype=np.float32)
    for index in order:
        if len(kept) >= limit:
            break
        vector = vectors[index]
        if kept and float((kept_vectors[: len(kept)] @ vector).max()) >= 1.0 - min_distance:
            continue
        kept_vectors[len(kept)] = vector
        kept.append(index)
    return kept


@dataclass(frozen=True)
class Diverse(Embedded):
    score_field: str = "length"
    min_distance: float = 0.1
    model: str | None = None  # for score_field ifd, when records carry no metadata.ifd
    name = "diverse"

    def __post_init__(self) -> None:
        if not 0 <= self.min_distance <= 2:
            raise ConfigError(f"--min-distance is a cosine distance, 0 to 2; got {self.min_distance}")

    @property
    def uses_length(self) -> bool:
        return self.score_field in LENGTH_FIELDS

    def ifd(self) -> Any:
        """The IFD scorer, for score_field ifd on records without metadata.ifd (None: not asked for)."""
        if self.score_field != "ifd" or not self.model:
            return None
        from longsift.select.ifd import IFD

        return IFD(model=self.model, device=self.device, trust_remote_code=self.trust_remote_code)

    def prepare(self) -> None:
        super().prepare()
        ifd = self.ifd()
        if ifd is not None:
            ifd.runner().load()  # its causal LM too, once per actor

    def scores(self, examples: Sequence[Example], lengths: Sequence[int | None]) -> list[float | None]:
        return score_values(self.score_field, examples, lengths, self.ifd())

    def pick(self, mapped: Mapped, k: int | None) -> list[int]:
        """DEITA's walk, best score first (ties: the earlier record), over the records with a score."""
        known = [i for i, s in enumerate(mapped.scores) if s is not None]
        order = sorted(range(len(known)), key=lambda p: (-mapped.scores[known[p]], p))  # type: ignore[operator]
        if not order:
            return []
        return sorted(known[p] for p in walk(mapped.vectors, order, k, self.min_distance))

    def describe(self) -> dict[str, Any]:
        from longsift.models.embed import DEFAULT_ENCODER

        return {"method": self.name, "score_field": self.score_field, "min_distance": self.min_distance,
                "encoder": self.encoder or DEFAULT_ENCODER,
                "selection": "DEITA Repr filter: best score first, keep if cosine distance to every kept > "
                             "min_distance, until k"}  # fmt: skip
