"""Every analysis on small hand-computed data: the expected numbers are derived in the comments."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from longsift.analyze import (
    LengthPair,
    analyze_records,
    bootstrap_mean_ci,
    cohen_kappa,
    compare_selections,
    judge_agreement,
    length_bias,
    length_distributions,
    length_matched_win_rate,
    length_pairs,
    longer_answer_wins,
    position_bias,
    response_lengths,
    win_rate_by_length_difference,
)
from longsift.analyze.length_bias import DEFAULT_EDGES
from longsift.errors import ConfigError, UnknownNameError
from longsift.lengths import check_units, count_array, distribution, get_unit, unit_record
from longsift.records import Example, Generation, Judgment
from longsift.verdicts import prompt_outcomes


def judgments_for(prompt: str, ab: str | None, ba: str | None, judge: str = "gpt", eval_set: str = "koala"):
    """Both orders of one prompt; None marks a failed call."""
    return [
        Judgment(prompt, eval_set, "A", "B", order, judge, "paper", verdict,  # type: ignore[arg-type]
                 status="ok" if verdict else "failed", raw=f"{judge} says {verdict}")
        for order, verdict in (("ab", ab), ("ba", ba))
    ]  # fmt: skip


# ---- length units and distributions -------------------------------------------------------------------------


def length_unit(by: str, tokenizer: Path | None = None):
    """The unit as `analyze` gets it: checked names, then the registry's one instance."""
    check_units(by, tokenizer)
    return get_unit(by, str(tokenizer) if tokenizer else None)


def test_chars_and_words_units() -> None:
    texts = ["a bc", "", "x  y z\n"]
    assert count_array(length_unit("chars"), texts).tolist() == [4, 0, 7]
    assert count_array(length_unit("words"), texts).tolist() == [2, 0, 3]  # runs of whitespace split once
    assert unit_record(length_unit("words"))["description"] == "whitespace-separated words"
    assert unit_record(length_unit("chars")) == {"name": "chars", "description": "characters", "unit": "chars",
                                                 "counts": "unicode code points"}  # fmt: skip


def test_nltk_unit_is_the_registrys_the_papers_count() -> None:
    # nltk.word_tokenize's doctest sentence (18 tokens, tests/test_lengths.py spells them out) and a clitic
    texts = ["Good muffins cost $3.88\nin New York.  Please buy me\ntwo of them.\nThanks.", "", "I can't."]
    unit = length_unit("nltk")
    assert count_array(unit, texts).tolist() == [18, 0, 4]  # I ca n't .
    assert unit_record(unit)["counts"] == "len(nltk.word_tokenize(text))" and unit.name == "nltk"


def test_tokens_unit_counts_with_the_given_tokenizer_file(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"[UNK]": 0, "hello": 1, ",": 2, "world": 3}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    for where in (tmp_path, tmp_path / "tokenizer.json"):  # a folder holding tokenizer.json, or the file itself
        unit = length_unit("tokens", where)
        # "hello, world" is 2 words but 3 tokens: the pre-tokenizer splits the comma off; "" is 0 tokens.
        assert unit.name == "tokens" and str(where) in unit.description
        assert count_array(unit, ["hello, world", "", "hello"]).tolist() == [3, 0, 1]


def test_tokens_without_a_tokenizer_and_unknown_units_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs a tokenizer"):
        length_unit("tokens")
    with pytest.raises(UnknownNameError, match="unknown length unit .bytes.*Known: chars, nltk, tokens, words"):
        length_unit("bytes")
    with pytest.raises(ConfigError, match="not found"):
        length_unit("tokens", tmp_path / "missing")
    with pytest.raises(ConfigError, match="counts only --by tokens"):  # not a silent count in chars
        length_unit("chars", tmp_path / "tokenizer.json")


def test_distribution_on_four_values() -> None:
    stats = distribution([4, 1, 3, 2])
    # mean 2.5; population variance ((1.5^2 + 0.5^2) * 2) / 4 = 1.25; percentiles interpolate on ranks 0..3:
    # p25 at rank 0.75 -> 1.75, median at 1.5 -> 2.5, p75 at 2.25 -> 3.25, p10 at 0.3 -> 1.3, p90 at 2.7 -> 3.7,
    # p95 at 2.85 -> 3.85, p99 at 2.97 -> 3.97.
    assert stats["n"] == 4 and stats["mean"] == 2.5 and stats["std"] == pytest.approx(math.sqrt(1.25))
    assert (stats["p10"], stats["p25"], stats["median"], stats["p75"], stats["p90"]) == pytest.approx(
        (1.3, 1.75, 2.5, 3.25, 3.7)
    )
    assert (stats["p95"], stats["p99"]) == pytest.approx((3.85, 3.97))
    assert (stats["min"], stats["max"]) == (1, 4)
    assert distribution([]) == {"n": 0}


def test_length_distributions_per_model_and_eval_set() -> None:
    generations = [
        Generation("1", "koala", "A", ("q",), ("one two three",)),  # 3 words
        Generation("2", "vicuna", "A", ("q",), ("one",)),  # 1
        Generation("1", "koala", "B", ("q",), ("a b c d e f",)),  # 6
        Generation("mt", "mt_bench", "B", ("q1", "q2"), ("a b", "c d")),  # both turns count: 4
    ]
    lengths = response_lengths(generations, length_unit("words"))
    assert lengths[("B", "mt_bench", "mt")] == 4
    result = length_distributions(lengths, bins=3)
    assert result["models"]["A"]["all"]["mean"] == 2.0  # (3 + 1) / 2
    assert result["models"]["A"]["by_eval_set"]["vicuna"]["mean"] == 1.0
    assert result["models"]["B"]["all"]["mean"] == 5.0  # (6 + 4) / 2
    # shared edges 0, 2, 4, 6: A's 1 and 3 fall in the first two bins, B's 4 and 6 both in the last (closed) one
    assert result["histogram"]["edges"] == [0.0, 2.0, 4.0, 6.0]
    assert result["histogram"]["counts"] == {"A": [1, 1, 0], "B": [0, 0, 2]}


# ---- statistics ------------------------------------------------------------------------------------------------


def test_bootstrap_interval_is_seeded_and_behaves_at_the_edges() -> None:
    # constant data: every resample has the same mean
    assert bootstrap_mean_ci([0.5, 0.5, 0.5], n_resamples=200, seed=1) == (0.5, 0.5)
    # [0, 1]: a resample's mean is 0, 0.5 or 1 with probabilities 1/4, 1/2, 1/4; 0 and 1 each hold far more
    # than 2.5% of the mass, so the 95% percentile interval is exactly (0, 1).
    assert bootstrap_mean_ci([0.0, 1.0], n_resamples=4000, seed=3) == (0.0, 1.0)
    # the same seed gives the same interval; nothing to resample gives none
    values = [0, 1, 1, 0.5, 1, 0, 1, 1]
    assert bootstrap_mean_ci(values, seed=7) == bootstrap_mean_ci(values, seed=7)
    low, high = bootstrap_mean_ci(values, seed=7)
    assert low is not None and high is not None and low < sum(values) / len(values) < high
    assert bootstrap_mean_ci([], seed=0) == (None, None)


def test_cohen_kappa_by_hand() -> None:
    first = ["win", "win", "tie", "lose"]
    second = ["win", "tie", "tie", "lose"]
    # p_o = 3/4. Shares: first win .5 tie .25 lose .25; second win .25 tie .5 lose .25.
    # p_e = .5*.25 + .25*.5 + .25*.25 = .3125; kappa = (.75 - .3125) / (1 - .3125) = .4375 / .6875 = 7/11.
    stats = cohen_kappa(first, second, ["win", "tie", "lose"])
    assert stats["agreement"] == 0.75 and stats["chance"] == pytest.approx(0.3125)
    assert stats["kappa"] == pytest.approx(7 / 11)
    assert stats["confusion"] == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
    # perfect agreement over two labels: p_e = .5, kappa 1; one label only: chance is 1, kappa undefined
    assert cohen_kappa(["win", "lose"], ["win", "lose"], ["win", "lose"])["kappa"] == pytest.approx(1.0)
    assert cohen_kappa(["tie", "tie"], ["tie", "tie"], ["win", "tie", "lose"])["kappa"] is None


# ---- length bias -----------------------------------------------------------------------------------------------

# (len_a, len_b, outcome) -> relative difference (a - b) / max(a, b)
PAIRS = [
    LengthPair("1", "koala", 100, 0, "win"),  # +1.0: last bin, which is closed at 1
    LengthPair("2", "koala", 100, 95, "tie"),  # +0.05
    LengthPair("3", "koala", 90, 100, "lose"),  # -0.1: [-0.1, 0.1) holds its low edge
    LengthPair("4", "lima", 40, 100, "lose"),  # -0.6
    LengthPair("5", "lima", 100, 100, "win"),  # 0, equal lengths
    LengthPair("6", "lima", 60, 100, "win"),  # -0.4
    LengthPair("7", "lima", 0, 0, "tie"),  # 0 (both empty)
]


def test_win_rate_by_relative_length_difference() -> None:
    rows = win_rate_by_length_difference(PAIRS, n_resamples=200, seed=0)
    by_bin = {(row["low"], row["high"]): row for row in rows}
    assert [row["n"] for row in rows] == [1, 1, 0, 4, 0, 0, 1]
    # [-0.1, 0.1): pairs 2 (tie), 3 (lose), 5 (win), 7 (tie): (1 + 2 * 0.5) / 4 = 50%
    middle = by_bin[(-0.1, 0.1)]
    assert (middle["win"], middle["tie"], middle["lose"], middle["win_rate"]) == (1, 2, 1, 50.0)
    assert middle["ci_low"] <= 50.0 <= middle["ci_high"]
    assert by_bin[(0.5, 1.0)]["win_rate"] == 100.0 and by_bin[(0.5, 1.0)]["ci_low"] == 100.0  # one win only
    assert by_bin[(-1.0, -0.5)]["win_rate"] == 0.0  # pair 4 lost
    assert by_bin[(-0.5, -0.25)]["win_rate"] == 100.0  # pair 6 won although shorter
    assert by_bin[(-0.25, -0.1)]["win_rate"] is None and by_bin[(-0.25, -0.1)]["ci_low"] is None


def test_length_matched_longer_wins_and_the_whole_panel() -> None:
    matched = length_matched_win_rate(PAIRS, tolerance=0.10, n_resamples=200)
    # |diff| <= 0.1: pairs 2, 3 (exactly 0.1 counts), 5, 7 -> 50%, 4 of 7 pairs
    assert (matched["n"], matched["win_rate"]) == (4, 50.0)
    assert matched["share_of_pairs"] == pytest.approx(100 * 4 / 7)
    # decided (win/lose): 1 (A longer, won), 3 (B longer, B won), 4 (B longer, B won), 5 (equal), 6 (A shorter, won)
    # -> 4 with unequal lengths, 3 went to the longer answer: 75%
    assert longer_answer_wins(PAIRS) == {
        "decided": 5, "equal_length": 1, "longer_won": 3, "shorter_won": 1, "longer_share": 75.0,
    }  # fmt: skip
    panel = length_bias(PAIRS, n_resamples=200)
    # wins 1, 5, 6; ties 2, 7; losses 3, 4: (3 + 2 * 0.5) / 7
    assert panel["overall"]["win_rate"] == pytest.approx(100 * 4 / 7)
    assert panel["a_longer_share"] == pytest.approx(100 * 2 / 7)  # A is longer in pairs 1 and 2
    assert panel["length_matched"]["n"] == 4 and len(panel["by_length_difference"]) == 7


def test_length_pairs_join_outcomes_with_lengths_and_count_what_is_left_out() -> None:
    judgments = [
        *judgments_for("1", "a", "a"),  # paper win, strict win
        *judgments_for("2", "a", "tie"),  # paper win, strict tie
        *judgments_for("3", "b", None),  # failed
        *judgments_for("4", "b", "b"),  # no length for B: left out
    ]
    lengths_a = {("koala", "1"): 10, ("koala", "2"): 20, ("koala", "3"): 5, ("koala", "4"): 5}
    lengths_b = {("koala", "1"): 5, ("koala", "2"): 40, ("koala", "3"): 5}
    outcomes = prompt_outcomes(judgments)
    paper, skipped = length_pairs(outcomes, lengths_a, lengths_b, "paper")
    assert skipped == {"failed": 1, "missing_length": 1}
    assert sorted((p.prompt_id, p.len_a, p.len_b, p.outcome) for p in paper) == [
        ("1", 10, 5, "win"), ("2", 20, 40, "win"),
    ]  # fmt: skip
    strict, _ = length_pairs(outcomes, lengths_a, lengths_b, "strict")
    assert sorted(p.outcome for p in strict) == ["tie", "win"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50), st.sampled_from(["win", "tie", "lose"])),
                max_size=30))  # fmt: skip
def test_swapping_a_and_b_mirrors_every_length_bias_number(rows: list[tuple[int, int, str]]) -> None:
    """Invariant: B's view of the same prompts is A's win rate mirrored around 50, in mirrored bins."""
    flip = {"win": "lose", "lose": "win", "tie": "tie"}
    pairs = [LengthPair(str(i), "s", a, b, o) for i, (a, b, o) in enumerate(rows)]  # type: ignore[arg-type]
    swapped = [LengthPair(p.prompt_id, "s", p.len_b, p.len_a, flip[p.outcome]) for p in pairs]  # type: ignore[arg-type]
    ours, theirs = length_bias(pairs, n_resamples=20), length_bias(swapped, n_resamples=20)
    if pairs:
        assert ours["overall"]["win_rate"] == pytest.approx(100 - theirs["overall"]["win_rate"])
        assert ours["length_matched"]["n"] == theirs["length_matched"]["n"]
    assert ours["longer_answer_wins"] == theirs["longer_answer_wins"]  # "the longer one won" has no side
    interior = [p for p in pairs if p.relative_difference not in DEFAULT_EDGES]  # edges belong to one side only
    mirrored = win_rate_by_length_difference(interior, n_resamples=20)
    mirrored_swap = win_rate_by_length_difference(
        [LengthPair(p.prompt_id, "s", p.len_b, p.len_a, flip[p.outcome]) for p in interior],  # type: ignore[arg-type]
        n_resamples=20,
    )
    for row, other in zip(mirrored, reversed(mirrored_swap), strict=True):
        assert row["n"] == other["n"] and (row["win"], row["lose"]) == (other["lose"], other["win"])


# ---- judges -----------------------------------------------------------------------------------------------------


def test_position_bias_per_judge() -> None:
    judgments = [
        *judgments_for("1", "a", "a"),  # same verdict both orders
        *judgments_for("2", "a", "b"),  # flipped: the answer shown first won both times
        *judgments_for("3", "b", "a"),  # flipped: the answer shown second won both times
        *judgments_for("4", "tie", "b"),  # flipped (tie vs b)
        *judgments_for("5", "a", None),  # failed
        *judgments_for("1", "a", "a", judge="palm"),
    ]
    rows = {row["judge"]: row for row in position_bias(judgments)}
    gpt = rows["gpt/paper"]
    # judged: prompts 1-4; flipped 2, 3, 4 -> 75%
    assert (gpt["prompts"], gpt["judged"], gpt["failed"], gpt["flipped"]) == (5, 4, 1, 3)
    assert gpt["flip_rate"] == 75.0
    assert (gpt["first_always_won"], gpt["second_always_won"]) == (1, 1)
    # judgments that picked a side, and whether the side was the one shown first ("ab" shows A first):
    # 1ab a first, 1ba a second, 2ab a first, 2ba b first, 3ab b second, 3ba a second, 4ba b first, 5ab a first
    # -> 5 of 8 = 62.5%
    assert gpt["sided_judgments"] == 8 and gpt["first_position_share"] == 62.5
    assert rows["palm/paper"]["flip_rate"] == 0.0 and rows["palm/paper"]["first_position_share"] == 50.0


def test_judge_agreement_table() -> None:
    judgments = [
        # judge gpt:     paper win, win, tie, lose;   strict win, tie, tie, lose
        *judgments_for("1", "a", "a"), *judgments_for("2", "a", "tie"), *judgments_for("3", "a", "b"),
        *judgments_for("4", "b", "b"), *judgments_for("5", "a", "a"),
        # judge palm:    paper win, tie, tie, lose;   strict win, tie, tie, lose; prompt 5 failed
        *judgments_for("1", "a", "a", judge="palm"), *judgments_for("2", "b", "a", judge="palm"),
        *judgments_for("3", "tie", "tie", judge="palm"), *judgments_for("4", "b", "b", judge="palm"),
        *judgments_for("5", None, "a", judge="palm"),
    ]  # fmt: skip
    [row] = judge_agreement(judgments)
    assert (row["judge_1"], row["judge_2"], row["shared_prompts"]) == ("gpt/paper", "palm/paper", 5)
    paper, strict = row["policies"]["paper"], row["policies"]["strict"]
    # paper: the hand-computed kappa of test_cohen_kappa_by_hand (7/11), agreement 3/4
    assert (paper["n"], paper["failed"], paper["agreement_pct"]) == (4, 1, 75.0)
    assert paper["kappa"] == pytest.approx(7 / 11)
    assert paper["confusion"] == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
    # strict: identical labels win, tie, tie, lose: p_o = 1, p_e = .25*.25 + .5*.5 + .25*.25 = .375, kappa 1
    assert strict["agreement_pct"] == 100.0 and strict["kappa"] == pytest.approx(1.0)
    assert judge_agreement(judgments_for("1", "a", "a")) == []  # one judge: nothing to compare


# ---- selection side -------------------------------------------------------------------------------------------


def test_selection_profile_against_its_source() -> None:
    def example(i: int, response: str, **metadata: object) -> Example:
        return Example.from_alpaca(f"do thing {i}", "", response, id=str(i), row=i).with_metadata(**metadata)

    source = [
        example(0, "short", score=4.0),  # 1 word
        example(1, "a bit longer answer", score=5.0),  # 4 words
        example(2, "the longest answer of them all", score=3.0, flagged=True),  # 6 words; booleans are skipped
        example(3, "two words"),  # 2 words, no score
    ]
    subset = source[1:3]
    result = compare_selections({"longest-2": subset}, source, length_unit("words"))
    assert result["source"]["n"] == 4 and result["source"]["response"]["mean"] == 3.25  # (1 + 4 + 6 + 2) / 4
    row = result["subsets"]["longest-2"]
    assert row["response"]["mean"] == 5.0  # (4 + 6) / 2
    assert row["mean_ratio"] == pytest.approx(5.0 / 3.25) and row["share"] == 0.5
    assert row["instruction"]["mean"] == 3.0  # "do thing N"
    assert row["quality"] == {"score": {"mean": 4.0, "n": 2}}  # (5 + 3) / 2; `flagged` is boolean
    assert result["source"]["quality"]["score"] == {"mean": 4.0, "n": 3}  # (4 + 5 + 3) / 3
    alone = compare_selections({"s": subset}, None, length_unit("chars"))
    assert alone["source"] is None and alone["subsets"]["s"]["mean_ratio"] is None


# ---- everything at once --------------------------------------------------------------------------------------


def test_analyze_records_puts_the_pieces_together() -> None:
    generations = [
        Generation("1", "koala", "A", ("q",), ("a " * 10,)), Generation("1", "koala", "B", ("q",), ("b " * 5,)),
        Generation("2", "koala", "A", ("q",), ("a " * 20,)), Generation("2", "koala", "B", ("q",), ("b " * 40,)),
    ]  # fmt: skip
    judgments = [*judgments_for("1", "a", "a"), *judgments_for("2", "a", "tie"), *judgments_for("3", "b", None)]
    result = analyze_records(judgments, generations, unit=length_unit("words"), bootstrap=100, seed=0)
    assert result["unit"]["name"] == "words"
    assert result["lengths"]["models"]["A"]["all"]["mean"] == 15.0  # (10 + 20) / 2
    [comparison] = result["comparisons"]
    assert (comparison["model_a"], comparison["model_b"], comparison["judge"]) == ("A", "B", "gpt/paper")
    paper = comparison["policies"]["paper"]
    # prompt 1: A longer (10 vs 5) wins; prompt 2: A shorter (20 vs 40) wins under paper, ties under strict
    assert paper["overall"]["win_rate"] == 100.0 and paper["skipped"] == {"failed": 1, "missing_length": 0}
    assert paper["longer_answer_wins"]["longer_share"] == 50.0
    assert comparison["policies"]["strict"]["overall"]["win_rate"] == 75.0  # (1 + 0.5) / 2
    assert comparison["policies"]["strict"]["longer_answer_wins"]["longer_share"] == 100.0
    assert result["position_bias"][0]["flip_rate"] == 50.0  # prompt 2 of the 2 judged
