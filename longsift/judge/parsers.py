"""Readers of judge replies. Each takes the raw completion and returns a reading, or raises ParseError.

Pairwise parsers answer in the PRESENTED order ("first" / "second" / "tie"); `longsift.judge.order` maps that
back to A/B. They are strict on purpose: a reply we cannot read unambiguously is a failure to report, never a
tie (the paper's script turned such replies into [-1, -1], i.e. a silent tie).

Parsers are registered by name so a template file can name its parser (`parser = "score-pair"`).
"""

from __future__ import annotations

import ast
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


PairParser = Callable[[str], PairReading]
PAIR_PARSERS: Registry[PairParser] = Registry("pairwise judge parser")


def _score(text: str, reply: str) -> float:
    value = float(text)
    if not 0.0 <= value <= MAX_SCORE:
        raise ParseError(f"score {text} is outside 0-{MAX_SCORE:g}", reply)
    return value


# --- paper: "Assistant 1 / Assistant 2", the first line holds two scores -------------------------------------

_NUMBER = r"(\d+(?:\.\d+)?)"
_OUT_OF_TEN = r"(?:\s*/\s*10)?"
_TWO_SCORES = re.compile(rf"^{_NUMBER}{_OUT_OF_TEN}\s*(?:[,;]\s*|\s+){_NUMBER}{_OUT_OF_TEN}\.?$")
_LABELS = re.compile(r"(?i)\b(?:assistant\s*[12](?:'s)?(?:\s+score)?|scores?)\s*[:=]?")


def parse_score_pair(reply: str) -> PairReading:
    """The first non-blank line must hold exactly two scores (0-10), as the prompt asks: "8 9", "8, 9", "8.5 8".

    Also read: markdown emphasis, "Scores:" and "Assistant 1: 8, Assistant 2: 9" labels on that one line, "/10".
    Scores are compared as numbers (8.5 beats 8: the paper's counting script truncated both to 8, a tie).
    """
    lines = [line for line in reply.splitlines() if line.strip()]
    if not lines:
        raise ParseError("empty reply", reply)
    line = re.sub(r"[*_`#]", "", lines[0])
    line = _LABELS.sub(" ", line).strip()
    match = _TWO_SCORES.match(line)
    if match is None:
        raise ParseError(f"first line is not two scores: {lines[0][:80]!r}", reply)
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


PAIR_PARSERS.register("score-pair", parse_score_pair)
PAIR_PARSERS.register("bracket-verdict", parse_bracket_verdict)
PAIR_PARSERS.register("model-identifier", parse_model_identifier)


# --- MT-Bench single grading: "[[rating]]" ---------------------------------------------------------------------

# FastChat's own patterns (llm_judge/common.py): "[[8.5]]" first, then the single-bracket fallback "[8.5]".
RATING = re.compile(r"\[\[(\d+\.?\d*)\]\]")
RATING_FALLBACK = re.compile(r"\[(\d+\.?\d*)\]")


def parse_rating(reply: str) -> float:
    """FastChat's reading of a single-grade reply: the first "[[x]]", else the first "[x]"; x in 0-10.

    FastChat records -1 when nothing matches; we raise instead so the failure is counted apart, and we also
    reject a rating above 10 (FastChat would average it in).
    """
    match = RATING.search(reply) or RATING_FALLBACK.search(reply)
    if match is None:
        raise ParseError("no [[rating]] in the reply", reply)
    value = ast.literal_eval(match.group(1))
    return _score(str(float(value)), reply)
