"""`random`: a seeded uniform sample of k records, streamed in O(k) memory.

Each record gets a pseudo-random key, a keyed BLAKE2b hash of (seed, its conversation); the k smallest
keys win (bottom-k sampling, the streaming equivalent of a reservoir). The sample depends only on the
seed and the records' contents, not on their order: shuffling a file selects the same records (exact
duplicates share a key; the earlier row wins). Same seed, same sample; another seed, another sample.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from longsift.select.scoring import Item, content_bytes


@dataclass(frozen=True)
class RandomK:
    seed: int = 0
    name = "random"
    needs_example = True
    uses_length = False

    def keys(self, items: Sequence[Item], lengths: Sequence[int | None]) -> list[Any]:
        salt = self.seed.to_bytes(16, "big", signed=True)
        keys = []
        for item in items:
            assert item.example is not None
            digest = hashlib.blake2b(content_bytes(item.example), digest_size=8, key=salt).digest()
            keys.append(-int.from_bytes(digest, "big"))  # higher keys win: the smallest hashes
        return keys

    def describe(self) -> dict[str, Any]:
        return {"method": self.name, "seed": self.seed, "sampling": "bottom-k of blake2b(seed, conversation)"}
