"""LLM passes over training data: refine answers (the paper's introspection prompt) and score them (AlpaGasus).

Both keep every record, in input order, and say per record what happened (`metadata.refine_status`,
`metadata.score_status`), so a failed call or an unreadable reply never loses or empties a response.
"""

from longsift.refine.better_answer import parse_better_answer
from longsift.refine.rating import parse_score
from longsift.refine.refine import RefineReport, RefineResult, refine
from longsift.refine.score import ScoreReport, ScoreResult, score

__all__ = [
    "RefineReport", "RefineResult", "ScoreReport", "ScoreResult", "parse_better_answer", "parse_score", "refine",
    "score",
]  # fmt: skip
