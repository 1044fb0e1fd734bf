"""The refinement reply parser, the AlpaGasus score parser and the token budget, on hand-written replies."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from refine_replies import ACCEPTED_REPLIES, ANALYSIS, REJECTED_REPLIES

from longsift.errors import ConfigError, ParseError
from longsift.llm.tokens import TokenCounter
from longsift.refine.better_answer import PLACEHOLDERS, parse_better_answer
from longsift.refine.budget import BUDGET_CHARS_PER_TOKEN, fit_answer
from longsift.refine.rating import parse_score


@pytest.mark.parametrize(("reply", "expected"), ACCEPTED_REPLIES)
def test_better_answer_accepts(reply: str, expected: str) -> None:
    assert parse_better_answer(reply) == expected


@pytest.mark.parametrize("reply", REJECTED_REPLIES)
def test_better_answer_rejects(reply: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_better_answer(reply)
    assert info.value.text == reply


def _plain_body(text: str) -> bool:
    return (
        bool(text.strip())
        and text.strip() not in PLACEHOLDERS
        and not any(mark in text.lower() for mark in ("[", "answer", "**", "__"))
    )


@given(st.text(min_size=1).filter(_plain_body))
def test_better_answer_round_trip(body: str) -> None:
    reply = f"{ANALYSIS}[Better Answer]\n{body}\n[End]"
    assert parse_better_answer(reply) == body.strip()


SCORES: list[tuple[str, float]] = [
    ("4.5\n\nThe response is accurate.", 4.5),
    ("5", 5.0),
    ("  \n3\nExplanation", 3.0),
    ("**4**\nExplanation", 4.0),
    ("Score: 4.5\nBecause", 4.5),
    ("4.5/5 - mostly right", 4.5),
    ("4 out of 5", 4.0),
    ("0\nWrong answer.", 0.0),
    ("The response is accurate and complete.\nscore: 3.5", 3.5),
    ("Accuracy is good.\nRating - 2", 2.0),
]


@pytest.mark.parametrize(("reply", "expected"), SCORES)
def test_score_accepts(reply: str, expected: float) -> None:
    assert parse_score(reply) == expected


@pytest.mark.parametrize("reply", ["", "Excellent answer.", "7\nway too high", "-1", "Score: 11"])
def test_score_rejects(reply: str) -> None:
    with pytest.raises(ParseError):
        parse_score(reply)


def _render(answer: str) -> str:
    return f"[Instruction]\nSay things.\n\n[The Start of Answer]\n{answer}\n\n[The End of Answer]\n"


def _measure(counter: TokenCounter):
    return lambda answer: counter.count(_render(answer))


def test_fit_answer_keeps_short_answers() -> None:
    counter = TokenCounter(None, BUDGET_CHARS_PER_TOKEN)
    fitted = fit_answer("short", _measure(counter), counter, budget=1000)
    assert fitted is not None and fitted.text == "short" and not fitted.truncated


def test_fit_answer_cuts_in_tokens_not_characters() -> None:
    counter = TokenCounter(None, 3.0)
    answer = "word " * 500
    budget = 200
    fitted = fit_answer(answer, _measure(counter), counter, budget)
    assert fitted is not None and fitted.truncated and answer.startswith(fitted.text)
    assert fitted.tokens == counter.count(_render(fitted.text)) <= budget
    # The longest prefix: a few more characters would not fit (only the trailing space is stripped).
    assert counter.count(_render(answer[: len(fitted.text) + 4])) > budget


def test_fit_answer_none_when_instruction_alone_is_over_budget() -> None:
    counter = TokenCounter(None, 3.0)
    assert fit_answer("x", _measure(counter), counter, budget=5) is None


def test_unknown_tokenizer_is_a_clear_error_not_a_download(tmp_path) -> None:
    with pytest.raises(ConfigError, match="local files"):
        TokenCounter.load("meta-llama/Llama-2-7b-hf-not-here")
    with pytest.raises(ConfigError):
        TokenCounter.load(str(tmp_path))


def test_fit_answer_with_a_real_tokenizer(tmp_path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = ["the quick brown fox jumps over the lazy dog", "answers are cut at token boundaries"] * 50
    raw = Tokenizer(models.BPE(unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>"], show_progress=False))
    PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="<unk>").save_pretrained(tmp_path)

    counter = TokenCounter.load(str(tmp_path))
    assert "tokenizer" in counter.describe()
    answer = "the quick brown fox jumps over the lazy dog. " * 40
    budget = counter.count(_render("")) + 50
    fitted = fit_answer(answer, _measure(counter), counter, budget)
    assert fitted is not None and fitted.truncated and answer.startswith(fitted.text)
    assert counter.count(_render(fitted.text)) == fitted.tokens <= budget
    assert fitted.tokens >= budget - 3  # cut in tokens: nearly the whole budget is used
