"""Generic reply parsers a prompt file can name (`parser: number`); stages register their own beside these.

A parser takes the completion text and returns a value, or raises ParseError saying what it expected.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from longsift.errors import ParseError
from longsift.registry import Registry

Parser = Callable[[str], Any]
PARSERS: Registry[Parser] = Registry("reply parser")

NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)")
FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


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
            return json.loads(candidate)
        except ValueError:
            continue
    raise ParseError("no JSON value in the reply", text)


# Stage parsers, so that their packaged prompt files can name them (lazy: loaded when a prompt asks).
PARSERS.register("better-answer", "longsift.refine.better_answer:parse_better_answer")
PARSERS.register("alpagasus-score", "longsift.refine.rating:parse_score")
