"""Generic reply parsers a prompt file can name (`parser: number`); stages register their own beside these.

A parser takes the completion text and returns a value, or raises ParseError saying what it expected. Every
parser is bounded: linear regular expressions, no eval, no recursion (JSON through orjson, whose depth is capped),
no int() of unbounded digit strings. `safe_parse` is how the LLM layer calls a parser: whatever a parser raises
on an odd reply (a cached one included) becomes a parse failure of that record, never a crash of the run.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from longsift.errors import ParseError
from longsift.registry import Registry

Parser = Callable[[str], Any]
PARSERS: Registry[Parser] = Registry("reply parser")

NUMBER = re.compile(r"[-+]?(?:\d++(?:\.\d*+)?|\.\d++)")
FENCE = re.compile(r"```(?:json)?\s*+(.*?)```", re.DOTALL)
MAX_NUMBER_CHARS = 64  # longer digit runs are not a number anyone meant


def safe_parse(parser: Parser, text: str) -> tuple[bool, Any]:
    """(True, value) or (False, reason): a ParseError's reason, or what else the parser raised on this reply."""
    try:
        return True, parser(text)
    except ParseError as exc:
        return False, exc.reason
    except (ValueError, ArithmeticError, RecursionError, MemoryError, TypeError, IndexError, KeyError) as exc:
        return False, f"unreadable reply ({type(exc).__name__}: {str(exc)[:120]})"


@PARSERS.register("text")
def parse_text(text: str) -> str:
    """The reply itself, stripped; an empty reply is a failure."""
    stripped = text.strip()
    if not stripped:
        raise ParseError("empty reply", text)
    return stripped


@PARSERS.register("number")
def parse_number(text: str) -> float:
    """The first number in the reply ("Score: 4.5 because ..." -> 4.5)."""
    match = NUMBER.search(text)
    if match is None:
        raise ParseError("no number in the reply", text)
    if len(match.group()) > MAX_NUMBER_CHARS:
        raise ParseError(f"a number of {len(match.group()):,} characters", text)
    return float(match.group())


@PARSERS.register("json")
def parse_json(text: str) -> Any:
    """A JSON value: the whole reply, a ```json fenced block, or the first {...} / [...] span."""
    candidates = [text, *FENCE.findall(text)]
    for opener, closer in ("{}", "[]"):
        start, end = text.find(opener), text.rfind(closer)
        if 0 <= start < end:
            candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            return orjson.loads(candidate)  # no recursion limit to hit, no unbounded integers
        except orjson.JSONDecodeError:
            continue
    raise ParseError("no JSON value in the reply", text)


# Stage parsers, so that their packaged prompt files can name them (lazy: loaded when a prompt asks).
PARSERS.register("better-answer", "longsift.refine.better_answer:parse_better_answer")
PARSERS.register("alpagasus-score", "longsift.refine.rating:parse_score")
