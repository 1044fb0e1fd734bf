"""`--compat paper`: the better answer as the paper's post-processing read it (refinement/
refine_responses_postprocess.py, extract_segments and the `len(seg_list) != 1` check that follows).

Which branch applies depends only on how often the literal tags occur; each branch then uses Python's `re` with
the script's own patterns, whose quirks carry over: the first bare "End" ends a segment when the reply has one
`[End]`, and with two or more `[Better Answer]` tags each match swallows the next start tag, so "[Better Answer]
a [Better Answer] b [End]" gives one segment, "a". An empty result is what the script counted as "none": the
record keeps its original answer (here: a failure that says so).
"""

from __future__ import annotations

import re

from longsift.errors import ParseError

_BETTER, _END = "[Better Answer]", "[End]"
_MANY = re.compile(r"\[(Better Answer)\](.*?)(\[End\]|\[Better Answer\]|$)", re.DOTALL)
_ONE_CLOSED = {
    name: re.compile(rf"\[({name})\](.*?)(\[End\]|End|$)", re.DOTALL)
    for name in ("Better Answer", "Revised Answer", "Improved Answer")
}


def script_segments(text: str) -> list[str]:
    """extract_segments(text), branch for branch."""
    ends = text.count(_END)
    if text.count(_BETTER) >= 2:
        return [found[1].strip() for found in _MANY.findall(text)]
    for name, pattern in _ONE_CLOSED.items():
        if text.count(f"[{name}]") == 1 and ends == 1:
            return [found[1].strip() for found in pattern.findall(text)]
    for name in _ONE_CLOSED:
        if text.count(f"[{name}]") == 1 and ends == 0:
            return [text.split(f"[{name}]")[1].strip()]
    return [""]


def parse_paper_better_answer(reply: str) -> str:
    segments = script_segments(reply)
    answer = segments[0] if len(segments) == 1 else ""
    if not answer:
        found = "no segment" if segments == [""] else f"{len(segments)} segments"
        raise ParseError(f"the paper's post-processing finds no single better answer ({found}): original kept", reply)
    return answer
