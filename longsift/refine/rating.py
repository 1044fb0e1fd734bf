"""Read the AlpaGasus accuracy score (0-5) from a rating reply whose first line holds the score.

AlpaGasus (rating/chatgpt_rating.py, filter.py) did `float(reply.split("\\n")[0])`, then fell back to the text
after "score:" (to the end of that line) or after "Score:" (where it kept only the first character, so
"Score: 4.5" crashed), and otherwise logged the reply and stored -1, a score that silently sorts below every
threshold. Here the score is the first number on the first non-empty line ("4.5", "**4.5**", "Score: 4.5",
"4.5/5", "4.5 out of 5"), else the number after a "score"/"rating" label anywhere; it must lie in [0, 5].
Anything else is a ParseError, which the stage counts as a failure instead of a score.
"""

from __future__ import annotations

import re

from longsift.errors import ParseError

NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?")
LABELLED = re.compile(r"\b(?:score|rating)\b[^\d\n]{0,20}?([-+]?\d+(?:\.\d+)?)", re.IGNORECASE)
LOWEST, HIGHEST = 0.0, 5.0
MAX_SCORE_CHARS = 32


def parse_score(reply: str, lowest: float = LOWEST, highest: float = HIGHEST) -> float:
    """The score in `reply`, a float in [lowest, highest]; ParseError when there is none."""
    first_line = next((line for line in reply.splitlines() if line.strip()), "")
    found = NUMBER.search(first_line)
    value = found.group(0) if found else None
    if value is None:
        labelled = LABELLED.search(reply)
        value = labelled.group(1) if labelled else None
    if value is None:
        raise ParseError("no score in the reply", reply)
    if len(value) > MAX_SCORE_CHARS:  # "[[999…9]]": no score, whatever float() would make of it
        raise ParseError(f"a score of {len(value):,} digits", reply)
    score = float(value)
    if not lowest <= score <= highest:
        raise ParseError(f"score {score:g} is outside [{lowest:g}, {highest:g}]", reply)
    return score
