"""Batching by length: prompts sorted longest first, so a batch holds prompts of similar length (little padding) and
the memory peak shows in the first batch rather than at the end; callers get each result with its original index."""

from __future__ import annotations

from collections.abc import Iterator, Sequence


def longest_first(lengths: Sequence[int]) -> list[int]:
    return sorted(range(len(lengths)), key=lambda i: -lengths[i])


def length_batches(lengths: Sequence[int], batch_size: int, batch_tokens: int | None = None) -> Iterator[list[int]]:
    """Indices into `lengths`, longest first, in runs of at most batch_size items and batch_tokens padded tokens."""
    batch: list[int] = []
    for index in longest_first(lengths):
        longest = lengths[batch[0]] if batch else lengths[index]
        full = len(batch) >= batch_size
        too_big = batch_tokens is not None and batch and longest * (len(batch) + 1) > batch_tokens
        if full or too_big:
            yield batch
            batch = []
        batch.append(index)
    if batch:
        yield batch
