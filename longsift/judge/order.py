"""Presentation order: which answer the judge sees first, and how its reading maps back to A/B.

Order "ab" shows A's answer first; "ba" shows B's first. Every pairwise prompt is judged in both orders so a
judge's position bias shows up as a flip instead of silently favouring one model.
"""

from __future__ import annotations

from typing import Literal, TypeVar

from longsift.judge.parsers import PairReading, Presented
from longsift.records import Verdict

Order = Literal["ab", "ba"]
ORDERS: tuple[Order, Order] = ("ab", "ba")
T = TypeVar("T")

_TO_AB: dict[Order, dict[Presented, Verdict]] = {
    "ab": {"first": "a", "second": "b", "tie": "tie"},
    "ba": {"first": "b", "second": "a", "tie": "tie"},
}
_TO_PRESENTED: dict[Order, dict[Verdict, Presented]] = {
    order: {ab: shown for shown, ab in table.items()} for order, table in _TO_AB.items()
}


def present(order: Order, a: T, b: T) -> tuple[T, T]:
    """(first, second) as the judge sees them."""
    return (a, b) if order == "ab" else (b, a)


def unpresent(order: Order, first: T, second: T) -> tuple[T, T]:
    """(a, b) from what was shown first and second: the inverse of `present`."""
    return present(order, first, second)


def to_ab(order: Order, verdict: Presented) -> Verdict:
    return _TO_AB[order][verdict]


def to_presented(order: Order, verdict: Verdict) -> Presented:
    return _TO_PRESENTED[order][verdict]


def reading_to_ab(order: Order, reading: PairReading) -> tuple[Verdict, float | None, float | None]:
    """The verdict and (score_a, score_b) of a reading made in `order`."""
    score_a, score_b = unpresent(order, reading.score_first, reading.score_second)
    return to_ab(order, reading.verdict), score_a, score_b
