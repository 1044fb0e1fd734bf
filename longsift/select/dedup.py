"""Near-duplicate filters, usable before any method (`--chain "dedup-minhash -> longest"`) or as the method itself
(then the first k records that are not duplicates, in source order). In both, records are walked in source order
and a record is dropped when it duplicates an earlier record that was kept: the first occurrence wins.

`dedup-minhash`: MinHash LSH (Broder 1997; the `datasketch` library) over word shingles (`shingle_words` words,
lowercased, of the whole conversation): a record is a duplicate when an LSH candidate's estimated Jaccard
similarity (the share of equal MinHash values) is at least `minhash_threshold`. Shingles are hashed by CRC-32
(a third faster than datasketch's SHA-1; the seeded permutations on top of it do the MinHash's mixing). The LSH
bands are set for a threshold 0.15 lower, so that pairs just above the threshold are rarely missed; the check
keeps precision.
Memory: one MinHash per kept record (`minhash_permutations` 32-bit values) plus the LSH index.

`dedup-semantic`: SemDeDup (Abbas et al., 2023): a record is a duplicate when its embedding's cosine similarity to
a kept record's is at least `semantic_threshold` (embeddings as kcenter's: mean-pooled, normalised, cached).
Every record is compared with every kept one, in blocks (O(n x kept x d) time, O(n x d) memory); SemDeDup's
k-means clustering, which only prunes those comparisons, is left out.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from longsift.errors import ConfigError
from longsift.models.embed import record_text
from longsift.records import Example
from longsift.select.kcenter import Embedded, Mapped

WORD = re.compile(r"\w+")
CHUNK = 1024
LSH_MARGIN = 0.15


def shingles(text: str, size: int) -> set[bytes]:
    words = WORD.findall(text.lower())
    if len(words) <= size:
        return {" ".join(words).encode()}
    return {" ".join(words[i : i + size]).encode() for i in range(len(words) - size + 1)}


def first_k(kept: Sequence[bool], k: int | None) -> list[int]:
    indices = [i for i, keep in enumerate(kept) if keep]
    return indices if k is None else indices[:k]


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[tuple[int, Sequence[Any]]]:
    for start in range(0, len(items), size):
        yield start, items[start : start + size]


@dataclass(frozen=True)
class MinHashDedup:
    minhash_threshold: float = 0.6
    minhash_permutations: int = 128
    shingle_words: int = 2
    seed: int = 0
    name = "dedup-minhash"
    needs_example = True
    uses_length = False
    pool = True

    def __post_init__(self) -> None:
        if not 0 < self.minhash_threshold <= 1:
            raise ConfigError(f"--minhash-threshold is a Jaccard similarity in (0, 1], got {self.minhash_threshold}")

    def keep(self, examples: Sequence[Example], lengths: Sequence[int | None] = ()) -> list[bool]:
        return self.keep_texts([record_text(example) for example in examples])

    def keep_texts(self, texts: Sequence[str]) -> list[bool]:
        import numpy as np

        try:
            from datasketch import MinHash, MinHashLSH
        except ImportError:
            from longsift.errors import MissingDependencyError

            raise MissingDependencyError("datasketch", "select", "--method dedup-minhash") from None
        # LSH bands tuned below the threshold: more candidates (fewer missed pairs near it), each then checked
        lsh = MinHashLSH(threshold=max(0.1, self.minhash_threshold - LSH_MARGIN), num_perm=self.minhash_permutations)
        signatures: dict[int, Any] = {}
        kept: list[bool] = []
        for start, chunk in _chunks(texts):
            sets = [shingles(text, self.shingle_words) for text in chunk]
            hashes = MinHash.bulk(sets, num_perm=self.minhash_permutations, seed=self.seed + 1, hashfunc=zlib.crc32)
            for offset, minhash in enumerate(hashes):
                signature = np.asarray(minhash.hashvalues, dtype=np.uint32)
                similar = any(
                    float(np.mean(signatures[other] == signature)) >= self.minhash_threshold
                    for other in lsh.query(minhash)
                )
                kept.append(not similar)
                if not similar:
                    key = start + offset
                    lsh.insert(key, minhash, check_duplication=False)
                    signatures[key] = signature
        return kept

    def choose(self, examples: Sequence[Example], lengths: Sequence[int | None], k: int | None) -> list[int]:
        return first_k(self.keep(examples, lengths), k)

    def describe(self) -> dict[str, Any]:
        return {"method": self.name, "threshold": self.minhash_threshold, "permutations": self.minhash_permutations,
                "shingle_words": self.shingle_words, "seed": self.seed,
                "rule": "MinHash LSH over word shingles; the first occurrence wins"}  # fmt: skip


def semantic_keep(vectors: Any, threshold: float) -> list[bool]:
    """Walk rows in order; a row is dropped when its cosine similarity to a kept row is >= threshold."""
    import numpy as np

    n = len(vectors)
    kept_rows = np.zeros_like(vectors)
    count = 0
    kept = [False] * n
    for start, chunk in _chunks(vectors):
        earlier = (chunk @ kept_rows[:count].T).max(axis=1) if count else np.full(len(chunk), -np.inf)
        chunk_start = count
        for offset, vector in enumerate(chunk):
            if earlier[offset] >= threshold:
                continue
            if count > chunk_start and float((kept_rows[chunk_start:count] @ vector).max()) >= threshold:
                continue
            kept_rows[count] = vector
            count += 1
            kept[start + offset] = True
    return kept


@dataclass(frozen=True)
class SemanticDedup(Embedded):
    semantic_threshold: float = 0.9
    name = "dedup-semantic"
    needs_example = True
    uses_length = False
    pool = True

    def keep(self, examples: Sequence[Example], lengths: Sequence[int | None] = ()) -> list[bool]:
        if not examples:
            return []
        return semantic_keep(self.vectors(examples), self.semantic_threshold)

    def choose(self, examples: Sequence[Example], lengths: Sequence[int | None], k: int | None) -> list[int]:
        return first_k(self.keep(examples, lengths), k)

    def pick(self, mapped: Mapped, k: int | None) -> list[int]:
        """The first k records no earlier kept one is too similar to (on Ray: over every shard's vectors)."""
        return first_k(semantic_keep(mapped.vectors, self.semantic_threshold), k) if mapped.scores else []

    def describe(self) -> dict[str, Any]:
        from longsift.models.embed import DEFAULT_ENCODER

        return {
            "method": self.name,
            "threshold": self.semantic_threshold,
            "encoder": self.encoder or DEFAULT_ENCODER,
            "rule": "embedding cosine similarity >= threshold to a kept record; the first occurrence wins",
        }
