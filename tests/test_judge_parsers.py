"""Judge reply parsers on real-looking replies, malformed ones included, and the A/B order mapping."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from longsift.errors import ParseError
from longsift.judge.mtbench_grade import parse_rating  # the one MT-Bench reader
from longsift.judge.order import ORDERS, present, reading_to_ab, to_ab, to_presented, unpresent
from longsift.judge.parsers import (
    PairReading,
    parse_bracket_verdict,
    parse_model_identifier,
    parse_score_pair,
)

EXPLANATION = "\nAssistant 1 gave a concise and accurate answer, while Assistant 2 missed the second part."


@pytest.mark.parametrize(
    ("reply", "first", "second"),
    [
        ("8 9" + EXPLANATION, 8.0, 9.0),
        ("9 7\n\nBoth assistants ...", 9.0, 7.0),
        ("8.5 8" + EXPLANATION, 8.5, 8.0),  # the paper's int() made this a tie
        ("8, 9" + EXPLANATION, 8.0, 9.0),  # the paper's split(" ") failed on this one
        ("8,9", 8.0, 9.0),
        ("7 ; 6", 7.0, 6.0),
        ("\n\n10 10\nBoth are perfect.", 10.0, 10.0),  # leading blank lines
        ("**8 6**" + EXPLANATION, 8.0, 6.0),
        ("Scores: 3 5" + EXPLANATION, 3.0, 5.0),
        ("Assistant 1: 8, Assistant 2: 6.5" + EXPLANATION, 8.0, 6.5),
        ("Assistant 1 score: 4 Assistant 2 score: 9", 4.0, 9.0),
        ("8/10 9/10", 8.0, 9.0),
        ("1 10.", 1.0, 10.0),
        ("0 0", 0.0, 0.0),
    ],
)
def test_score_pair_reads_the_first_line(reply: str, first: float, second: float) -> None:
    reading = parse_score_pair(reply)
    assert (reading.score_first, reading.score_second) == (first, second)
    expected = "first" if first > second else "second" if second > first else "tie"
    assert reading.verdict == expected


@pytest.mark.parametrize(
    "reply",
    [
        "",
        "   \n  \n",
        "8" + EXPLANATION,  # one score
        "8 9 7",  # three
        "Assistant 1: 8\nAssistant 2: 9",  # the second score is not on the first line
        "Assistant 1 is better than Assistant 2.\n8 6",
        "I would rate them 8 and 6.",
        "11 3",  # outside the scale
        "8 -3",
        "eight nine",
        "[[A]]",
        "N/A N/A",
    ],
)
def test_score_pair_rejects_malformed_first_lines(reply: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_score_pair(reply)
    assert info.value.text == reply


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ("Assistant A is more detailed and accurate.\n\n[[A]]", "first"),
        ("Both are equally good. Final verdict: [[C]]", "tie"),
        ("Assistant B follows the instructions.\nFinal verdict: [[B]]", "second"),
        ("[[B]]", "second"),
        ("My verdict is [[A]]. To restate: [[A]]", "first"),
    ],
)
def test_bracket_verdict(reply: str, verdict: str) -> None:
    assert parse_bracket_verdict(reply) == PairReading(verdict)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "reply",
    [
        "Assistant A is better.",  # no brackets
        "[A]",  # single brackets are not the format
        "[[a]]",
        "[[D]]",
        'Per the format, "[[A]]" if A is better. My verdict: [[B]]',  # ambiguous: FastChat would say A
        "",
    ],
)
def test_bracket_verdict_rejects(reply: str) -> None:
    with pytest.raises(ParseError):
        parse_bracket_verdict(reply)


@pytest.mark.parametrize(("reply", "verdict"), [("m", "first"), ("M", "second"), (" M\n", "second"), ("`m`", "first")])
def test_model_identifier(reply: str, verdict: str) -> None:
    assert parse_model_identifier(reply).verdict == verdict


@pytest.mark.parametrize("reply", ["", "mM", "Model M", "m is better", "1", "MM", "n"])
def test_model_identifier_rejects(reply: str) -> None:
    with pytest.raises(ParseError):
        parse_model_identifier(reply)


@pytest.mark.parametrize(
    ("reply", "rating"),
    [
        ("The answer is correct and well explained.\n\nRating: [[9]]", 9.0),
        ("Rating: [[8.5]]", 8.5),
        ("Rating: [[10]]", 10.0),
        ("The response has errors. Rating: [3]", 3.0),  # FastChat's single-bracket fallback
        ("Rating: [[7.]]", 7.0),
        ('Format: "Rating: [[5]]". I rate it [[2]]', 5.0),  # FastChat takes the first match; so do we
        ("Rating: [[0]]", 0.0),
    ],
)
def test_rating(reply: str, rating: float) -> None:
    assert parse_rating(reply) == rating


@pytest.mark.parametrize("reply", ["Rating: 8/10", "I give it an 8.", "", "Rating: [[eight]]", "Rating: [[15]]"])
def test_rating_rejects(reply: str) -> None:
    with pytest.raises(ParseError):
        parse_rating(reply)


verdicts = st.sampled_from(["a", "b", "tie"])
orders = st.sampled_from(ORDERS)
texts = st.text(max_size=30)
scores = st.floats(0, 10)


@given(orders, texts, texts)
def test_present_then_unpresent_is_the_identity(order, a, b) -> None:  # type: ignore[no-untyped-def]
    assert unpresent(order, *present(order, a, b)) == (a, b)


@given(orders, verdicts)
def test_verdict_swap_then_unswap_is_the_identity(order, verdict) -> None:  # type: ignore[no-untyped-def]
    assert to_ab(order, to_presented(order, verdict)) == verdict


@given(texts, texts, scores, scores)
def test_a_judge_that_reads_content_gives_the_same_ab_result_in_both_orders(a, b, score_a, score_b) -> None:  # type: ignore[no-untyped-def]
    """Show the pair in each order to an order-blind judge: mapped back, both orders agree on A/B."""
    truth = {a: score_a, b: score_b} if a != b else {a: score_a}
    results = set()
    for order in ORDERS:
        first, second = present(order, a, b)
        s1, s2 = truth[first], truth[second]
        shown = "tie" if s1 == s2 else "first" if s1 > s2 else "second"
        verdict, got_a, got_b = reading_to_ab(order, PairReading(shown, s1, s2))  # type: ignore[arg-type]
        assert (got_a, got_b) == (truth[a], truth[b])
        results.add(verdict)
    assert len(results) == 1


@pytest.mark.parametrize(
    "reply",
    [
        "9" * 5000 + " 8",  # no float() of a 5000-digit number
        "8" + " " * 100_000 + "x",  # a long run of spaces before a failure: no backtracking blow-up
        "8 " + "\t " * 50_000 + "9",
        "12345 8",  # more than 4 digits is no score
        "8." + "5" * 20 + " 8",
    ],
)
def test_score_pair_is_bounded_on_hostile_first_lines(reply: str) -> None:
    with pytest.raises(ParseError):
        parse_score_pair(reply)


def test_rating_never_builds_a_huge_int() -> None:
    with pytest.raises(ParseError, match="is not a rating in 0-10"):
        parse_rating("Rating: [[" + "9" * 5000 + "]]")
    assert parse_rating("[[8.]]") == 8.0 and parse_rating("[9]") == 9.0
