"""Batching by length: prompts sorted longest first, so a batch holds prompts of similar length (little padding) and
the memory peak shows in the first batch rather than at the end; callers get each result with its original index."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

SHAPE_STEP = 32  # tokens: fixed-shape widths are rounded up to this (more padding, fewer part-filled batches)


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


def shape_batches(
    lengths: Sequence[int], batch_size: int, step: int, limit: int | None = None
) -> Iterator[tuple[int, list[int]]]:
    """(width, indices) batches whose shape depends on each row's own length only: every row goes to the width
    `step` rounds its length up to (at most `limit`), `batch_size` rows of one width at a time, widest first,
    rows in index order. A short batch is for the caller to fill to `batch_size`; then every forward pass of a row
    has the same shape whatever rows share it (the kernels, and so the float bits, are the shape's)."""
    widths: dict[int, list[int]] = {}
    for index, length in enumerate(lengths):
        width = -(-length // step) * step
        widths.setdefault(max(length, min(width, limit or width)), []).append(index)
    for width in sorted(widths, reverse=True):
        rows = widths[width]
        for start in range(0, len(rows), batch_size):
            yield width, rows[start : start + batch_size]
