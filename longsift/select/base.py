"""Streaming top-k: a bounded heap, O(k) memory, deterministic ties.

Higher keys win; among equal keys the earlier source row wins (a stable sort by key, descending, would
pick the same rows). Selections are returned in ascending source-row order, as the paper's files list them.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

P = TypeVar("P")


@dataclass(slots=True)
class TopK(Generic[P]):
    """The k best (key, row, payload) seen so far; k=None keeps everything."""

    k: int | None
    _heap: list[tuple[Any, int, int, P]] = field(default_factory=list)  # (key, -row, tiebreak, payload)
    _pushed: int = 0

    def push(self, key: Any, row: int, payload: P) -> bool:
        """Offer one candidate; True if it is (for now) among the best k."""
        if self.k == 0:
            return False
        self._pushed += 1
        entry = (key, -row, self._pushed, payload)  # the counter keeps payloads out of comparisons
        if self.k is None or len(self._heap) < self.k:
            heapq.heappush(self._heap, entry)
            return True
        if entry[:2] > self._heap[0][:2]:
            heapq.heapreplace(self._heap, entry)
            return True
        return False

    def extend(self, items: Iterable[tuple[Any, int, P]]) -> None:
        for key, row, payload in items:
            self.push(key, row, payload)

    @property
    def full(self) -> bool:
        return self.k is not None and len(self._heap) >= self.k

    def threshold(self) -> Any:
        """The key a newcomer must reach (ties lose to earlier rows) once full; None before."""
        return self._heap[0][0] if self.full and self._heap else None

    def __len__(self) -> int:
        return len(self._heap)

    def items(self) -> list[tuple[Any, int, P]]:
        """(key, row, payload) in ascending row order."""
        return sorted(((key, -neg_row, payload) for key, neg_row, _, payload in self._heap), key=lambda e: e[1])

    def __iter__(self) -> Iterator[tuple[Any, int, P]]:
        return iter(self.items())


def top_k(items: Iterable[tuple[Any, int, P]], k: int | None) -> list[tuple[Any, int, P]]:
    heap: TopK[P] = TopK(k)
    heap.extend(items)
    return heap.items()
