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
