"""Aggregation policies on hand-computed verdicts."""

from __future__ import annotations

from longsift.records import Judgment
from longsift.verdicts import paper_outcome, prompt_outcomes, strict_outcome, tally


def judged(prompt: str, eval_set: str, ab: str | None, ba: str | None) -> list[Judgment]:
    out = []
    for order, verdict in (("ab", ab), ("ba", ba)):
        status = "ok" if verdict else "failed"
        out.append(Judgment(prompt, eval_set, "A", "B", order, "judge", "paper", verdict, status=status))  # type: ignore[arg-type]
    return out


def test_policies_on_every_pair_of_verdicts() -> None:
    table = {
        ("a", "a"): ("win", "win"), ("a", "tie"): ("win", "tie"), ("a", "b"): ("tie", "tie"),
        ("tie", "tie"): ("tie", "tie"), ("tie", "b"): ("lose", "tie"), ("b", "b"): ("lose", "lose"),
    }  # fmt: skip
    for (first, second), (paper, strict) in table.items():
        assert paper_outcome(first, second) == paper_outcome(second, first) == paper  # type: ignore[arg-type]
        assert strict_outcome(first, second) == strict_outcome(second, first) == strict  # type: ignore[arg-type]


def test_tally_counts_failures_apart_and_computes_the_winning_score() -> None:
    judgments = [
        *judged("1", "koala", "a", "a"),  # win / win
        *judged("2", "koala", "a", "tie"),  # win / tie
        *judged("3", "koala", "b", "a"),  # tie / tie, flipped
        *judged("4", "vicuna", "b", "b"),  # lose / lose
        *judged("5", "vicuna", "a", None),  # failed
    ]
    outcomes = prompt_outcomes(judgments)
    assert sum(o.flipped for o in outcomes) == 2  # prompts 2 and 3 changed with the order
    paper = tally(outcomes, "paper")
    assert (paper["koala"]["win"], paper["koala"]["tie"], paper["koala"]["lose"]) == (2, 1, 0)
    assert (paper["all"]["win"], paper["all"]["tie"], paper["all"]["lose"], paper["all"]["failed"]) == (2, 1, 1, 1)
    assert paper["all"]["n"] == 5 and paper["all"]["judged"] == 4
    assert paper["all"]["winning_score"] == 1 + (2 - 1) / 4
    strict = tally(outcomes, "strict")
    assert (strict["all"]["win"], strict["all"]["tie"], strict["all"]["lose"]) == (1, 2, 1)
    assert strict["vicuna"]["failed"] == 1 and strict["vicuna"]["win_pct"] == 0.0
    assert list(paper) == ["koala", "vicuna", "all"]


def with_lengths(judgments: list[Judgment], length_a: int, length_b: int) -> list[Judgment]:
    return [
        Judgment.from_dict({**j.to_dict(), "metadata": {"length_a": length_a, "length_b": length_b}}) for j in judgments
    ]


def test_flip_rate_and_how_often_the_longer_answer_wins() -> None:
    judgments = [
        *with_lengths(judged("1", "koala", "a", "a"), 90, 10),  # win; A longer: the longer won
        *with_lengths(judged("2", "koala", "a", "tie"), 10, 90),  # paper win (A shorter), strict tie; flipped
        *with_lengths(judged("3", "koala", "b", "b"), 50, 50),  # lose, equal lengths: not counted
        *with_lengths(judged("4", "koala", "b", "a"), 10, 20),  # tie / tie; flipped
        *with_lengths(judged("5", "koala", "b", "b"), 10, 20),  # lose; B longer: the longer won
        *judged("6", "koala", "a", "a"),  # win, lengths unknown: not counted
        *with_lengths(judged("7", "koala", None, "b"), 10, 20),  # failed
    ]
    outcomes = prompt_outcomes(judgments)
    paper, strict = tally(outcomes, "paper")["koala"], tally(outcomes, "strict")["koala"]
    assert (paper["judged"], paper["flipped"], paper["flip_pct"]) == (6, 2, 100 * 2 / 6)
    assert strict["flipped"] == 2  # flips do not depend on the policy
    assert (paper["longer_won"], paper["decided_by_length"], paper["longer_win_pct"]) == (2, 3, 100 * 2 / 3)
    assert (strict["longer_won"], strict["decided_by_length"]) == (2, 2)
    assert strict["longer_win_pct"] == 100.0
