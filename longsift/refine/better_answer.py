"""Read the rewritten answer out of a refinement reply: `[Better Answer] ... [End]` and how models deform it.

The paper's post-processing (refinement/refine_responses_postprocess.py) matched the literal tags, cut at the
first bare "End" it saw (so "End" inside the answer truncated it), and turned any reply with two
`[Better Answer]` tags into a failure. Here a start tag is the bracketed tag anywhere (optionally in markdown
bold, any case, "Improved"/"Revised"/"Refined" too) or an unbracketed "Better Answer:" heading at the start of a
line; an end tag is `[End]` (or `[End of Answer]`) and may be missing. Text after the end tag is ignored.

When a reply holds several segments: segments closed by an end tag win over open ones (an open segment runs to
the next start tag or the end of the text); empty segments and echoes of the format instruction ("your answer")
are dropped; identical segments count once. Two different closed answers are ambiguous and rejected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from longsift.errors import ParseError

_EMPHASIS = r"(?:\*\*|__|\*|_)?"
_NAME = r"(?:better|improved|revised|refined)[ \t]+answer"
_BRACKETED_START = rf"{_EMPHASIS}\[[ \t]*{_NAME}[ \t]*\]{_EMPHASIS}[ \t]*:?"
# An unbracketed heading must start a line: "Better Answer:", "**Better Answer:**", "### Better Answer", "2. Better
# Answer:". Mid-sentence prose ("here is a better answer:") is not a tag.
_LINE_START = (
    rf"^[ \t]*(?:\#{{1,6}}[ \t]*|\d+[.)][ \t]*)?{_EMPHASIS}{_NAME}"
    rf"(?:[ \t]*:[ \t]*{_EMPHASIS}|{_EMPHASIS}[ \t]*:|[ \t]*{_EMPHASIS}[ \t]*$)"
)
START = re.compile(rf"{_BRACKETED_START}|{_LINE_START}", re.IGNORECASE | re.MULTILINE)
END = re.compile(
    rf"{_EMPHASIS}\[[ \t]*(?:the[ \t]+)?end(?:[ \t]+of[ \t]+(?:the[ \t]+)?(?:better[ \t]+)?answer)?[ \t]*\]{_EMPHASIS}",
    re.IGNORECASE,
)
# What a model copies from the format instruction instead of answering.
PLACEHOLDERS = frozenset({"your answer", "...", "…", "<your answer>", "[your answer]"})


@dataclass(frozen=True, slots=True)
class Segment:
    text: str
    closed: bool  # ended by an explicit end tag


def segments(reply: str) -> list[Segment]:
    """Every start-tag segment of `reply`, in order, stripped."""
    starts = list(START.finditer(reply))
    found = []
    for i, start in enumerate(starts):
        limit = starts[i + 1].start() if i + 1 < len(starts) else len(reply)
        body = reply[start.end() : limit]
        end = END.search(body)
        text = body[: end.start()] if end else body
        found.append(Segment(_clean(text), closed=end is not None))
    return found


def parse_better_answer(reply: str) -> str:
    """The better answer in `reply`; ParseError when there is none, it is empty, or it is ambiguous."""
    found = segments(reply)
    if not found:
        raise ParseError("no [Better Answer] tag in the reply", reply)
    useful = [s for s in found if s.text and s.text.lower() not in PLACEHOLDERS]
    if not useful:
        raise ParseError("the [Better Answer] is empty", reply)
    closed = _distinct([s.text for s in useful if s.closed])
    if len(closed) > 1:
        raise ParseError(f"ambiguous reply: {len(closed)} different closed [Better Answer] segments", reply)
    if closed:
        return closed[0]
    return useful[-1].text


def _distinct(texts: list[str]) -> list[str]:
    return list(dict.fromkeys(texts))


def _clean(text: str) -> str:
    """Strip whitespace and markdown emphasis left dangling around the tags."""
    text = text.strip()
    for mark in ("**", "__"):
        if text.startswith(mark) and text.count(mark) % 2 == 1:
            text = text[len(mark) :].lstrip()
        if text.endswith(mark) and text.count(mark) % 2 == 1:
            text = text[: -len(mark)].rstrip()
    return text
