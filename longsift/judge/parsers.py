"""Readers of judge replies. Each takes the raw completion and returns a reading, or raises ParseError.

Pairwise parsers answer in the PRESENTED order ("first" / "second" / "tie"); `longsift.judge.order` maps that
back to A/B. They are strict on purpose: a reply we cannot read unambiguously is a failure to report, never a
tie (the paper's script turned such replies into [-1, -1], i.e. a silent tie).

Parsers are registered by name so a template file can name its parser (`parser = "score-pair"`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from longsift.errors import ParseError
from longsift.registry import Registry

Presented = Literal["first", "second", "tie"]
MAX_SCORE = 10.0


@dataclass(frozen=True, slots=True)
class PairReading:
    """What a pairwise reply says, in presented order; scores only for score-based templates."""

    verdict: Presented
    score_first: float | None = None
    score_second: float | None = None
    note: str | None = None  # e.g. why the paper's reading made a tie of an unreadable reply


PairParser = Callable[[str], PairReading]
PAIR_PARSERS: Registry[PairParser] = Registry("pairwise judge parser")


def _score(text: str, reply: str) -> float:
    value = float(text)
    if not 0.0 <= value <= MAX_SCORE:
        raise ParseError(f"score {text} is outside 0-{MAX_SCORE:g}", reply)
    return value


# --- paper: "Assistant 1 / Assistant 2", the first line holds two scores -------------------------------------

# A score is at most 4 digits, 6 decimals: float() never sees a huge number, and a line longer than
# MAX_SCORE_LINE is no score line. The pattern has no two adjacent repeats of the same class, so it cannot backtrack.
MAX_SCORE_LINE = 200
_NUMBER = r"(\d{1,4}(?:\.\d{1,6})?)"
_OUT_OF_TEN = r"(?:[ \t]*/[ \t]*10)?"
_SEPARATOR = r"(?:[ \t]*[,;][ \t]*|[ \t]+)"
_TWO_SCORES = re.compile(rf"{_NUMBER}{_OUT_OF_TEN}{_SEPARATOR}{_NUMBER}{_OUT_OF_TEN}\.?")
_LABELS = re.compile(r"(?i)\b(?:assistant[ \t]*[12](?:'s)?(?:[ \t]+score)?|scores?)[ \t]*[:=]?")


def _first_nonblank_line(reply: str) -> str | None:
    for line in reply.splitlines():
        if line.strip():
            return line
    return None


def parse_score_pair(reply: str) -> PairReading:
    """The first non-blank line must hold exactly two scores (0-10), as the prompt asks: "8 9", "8, 9", "8.5 8".

    Also read: markdown emphasis, "Scores:" and "Assistant 1: 8, Assistant 2: 9" labels on that one line, "/10".
    Scores are compared as numbers (8.5 beats 8: the paper's counting script truncated both to 8, a tie).
    """
    first_line = _first_nonblank_line(reply)
    if first_line is None:
        raise ParseError("empty reply", reply)
    if len(first_line) > MAX_SCORE_LINE:
        raise ParseError(f"first line is not two scores ({len(first_line)} characters)", reply)
    line = re.sub(r"[*_`#]", "", first_line)
    line = _LABELS.sub(" ", line).strip()
    match = _TWO_SCORES.fullmatch(line)
    if match is None:
        raise ParseError(f"first line is not two scores: {first_line[:80]!r}", reply)
    first, second = _score(match.group(1), reply), _score(match.group(2), reply)
    verdict: Presented = "first" if first > second else "second" if second > first else "tie"
    return PairReading(verdict, first, second)


# --- fastchat-pair: MT-Bench pair-v2, "[[A]]" / "[[B]]" / "[[C]]" ---------------------------------------------

_BRACKET_VERDICT = re.compile(r"\[\[([ABC])\]\]")
_BRACKET_MEANING: dict[str, Presented] = {"A": "first", "B": "second", "C": "tie"}


def parse_bracket_verdict(reply: str) -> PairReading:
    """Exactly one kind of `[[A]]`/`[[B]]`/`[[C]]` in the reply (repeats of the same one are fine).

    FastChat takes the first of A, B, C found in that precedence; a reply holding two different verdicts is
    ambiguous and we count it as a failure instead.
    """
    found = set(_BRACKET_VERDICT.findall(reply))
    if not found:
        raise ParseError("no [[A]], [[B]] or [[C]] verdict in the reply", reply)
    if len(found) > 1:
        raise ParseError(f"ambiguous: the reply holds {', '.join(sorted(f'[[{v}]]' for v in found))}", reply)
    return PairReading(_BRACKET_MEANING[found.pop()])


# --- alpacaeval: the best model's identifier, "m" (first output) or "M" (second) -----------------------------

_IDENTIFIERS: dict[str, Presented] = {"m": "first", "M": "second"}


def parse_model_identifier(reply: str) -> PairReading:
    """The whole reply is the identifier, m or M (case matters), optionally quoted or back-ticked."""
    text = reply.strip().strip("`'\"").strip()
    if text not in _IDENTIFIERS:
        raise ParseError(f"expected exactly 'm' or 'M', got {reply[:40]!r}", reply)
    return PairReading(_IDENTIFIERS[text])


# --- the paper's own readings: parse_score of its judge scripts, then result_graph.py's int() comparison ------
# evaluation/evaluation_gpt4.py and evaluation/evaluation_palm2.py (tml-epfl/long-is-more-for-alignment) store
# parse_score(review) as the judgment's "score"; utils/result_graph.py compares int() of the two. Python's own
# float() and int() are used on purpose: they are the reading (signs, "1e1", "nan", "1_0", other digits, spaces).

PAPER_UNREADABLE = (-1.0, -1.0)  # what parse_score returns for any reply it cannot split into two floats
_PALM2_LABELS = ("**", "Score: ", "Assistant 1: ", "Assistant 2: ", "Assistant 1 Score: ", "Assistant 2 Score: ")


def _two_floats(parts: list[str]) -> tuple[float, float] | None:
    if len(parts) != 2:
        return None
    try:
        return float(parts[0]), float(parts[1])
    except ValueError:
        return None


def gpt4_script_scores(review: str) -> tuple[float, float] | None:
    """evaluation_gpt4.py's parse_score; None where it returned [-1, -1]."""
    score_pair = review.split("\n")[0].replace(",", " ")
    return _two_floats(score_pair.split(" "))


def palm2_script_scores(review: str) -> tuple[float, float] | None:
    """evaluation_palm2.py's parse_score: commas dropped (not spaced), labels removed in this order, one leading
    space cut; an empty line raised IndexError, i.e. [-1, -1]. None where it returned [-1, -1]."""
    score_pair = review.split("\n")[0].replace(",", "")
    for label in _PALM2_LABELS:
        score_pair = score_pair.replace(label, "")
    if not score_pair:
        return None
    if score_pair[0] == " ":
        score_pair = score_pair[1:]
    return _two_floats(score_pair.split(" "))


def paper_reading(scores: tuple[float, float] | None, reply: str) -> PairReading:
    """result_graph.py's comparison of int(score_1) and int(score_2); [-1, -1] is a tie like any equal pair.

    int() of nan or inf raises there (the script stops); here that reply is a failure saying so.
    """
    note = None
    if scores is None:
        scores, note = PAPER_UNREADABLE, "unreadable: the paper's parse_score gave [-1, -1], a tie"
    try:
        first, second = int(scores[0]), int(scores[1])
    except (ValueError, OverflowError) as exc:
        reason = f"the paper's result_graph.py cannot count scores {scores}: int() raises {exc}"
        raise ParseError(reason, reply) from None
    verdict: Presented = "first" if first > second else "second" if second > first else "tie"
    return PairReading(verdict, scores[0], scores[1], note)


def parse_paper_gpt4(reply: str) -> PairReading:
    return paper_reading(gpt4_script_scores(reply), reply)


def parse_paper_palm2(reply: str) -> PairReading:
    return paper_reading(palm2_script_scores(reply), reply)


PAIR_PARSERS.register("score-pair", parse_score_pair)
PAIR_PARSERS.register("bracket-verdict", parse_bracket_verdict)
PAIR_PARSERS.register("model-identifier", parse_model_identifier)
PAIR_PARSERS.register("paper-gpt4", parse_paper_gpt4)
PAIR_PARSERS.register("paper-palm2", parse_paper_palm2)
