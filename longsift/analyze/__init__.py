"""Analyses over judge and generation records: is the win just the judge liking long answers?

Pure functions over `Judgment`, `Generation` and `Example` records; `analyze` runs them all over files or a run
directory and writes RUN_DIR/analyze/analysis.json (see longsift.layout for the run-directory layout).
"""

from longsift.analyze.judges import judge_agreement, position_bias
from longsift.analyze.length_bias import (
    LengthPair,
    length_bias,
    length_matched_win_rate,
    length_pairs,
    longer_answer_wins,
    win_rate,
    win_rate_by_length_difference,
)
from longsift.analyze.lengths import length_distributions, response_lengths
from longsift.analyze.run import analyze, analyze_records
from longsift.analyze.selection import compare_selections, profile
from longsift.analyze.stats import bootstrap_mean_ci, cohen_kappa

__all__ = [
    "LengthPair", "analyze", "analyze_records", "bootstrap_mean_ci", "cohen_kappa",
    "compare_selections", "judge_agreement", "length_bias", "length_distributions",
    "length_matched_win_rate", "length_pairs", "longer_answer_wins", "position_bias", "profile",
    "response_lengths", "win_rate", "win_rate_by_length_difference",
]  # fmt: skip
