"""Check our length-controlled win rate against the official leaderboard, given AlpacaEval's df_gamed.csv.

The instruction-difficulty table is not in ../shared and cannot be fetched here, so this check is a script to
run where it is available, not a test:

    python bench/alpacaeval_lc.py --difficulty /path/to/df_gamed.csv [--data ../shared/data]

It prints our LC and fitted GLM weights for alpaca-7b next to the leaderboard's LC and the official weights.
"""

from __future__ import annotations

import os
import sys

# bench/select.py (named by issue 2) shadows the standard library's `select` for scripts in this folder.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

import argparse
import csv
from pathlib import Path

from longsift.judge import alpacaeval, length_control

ANNOTATIONS = "alpaca_eval/annotations/alpaca-7b__weighted_alpaca_eval_gpt4_turbo.json.gz"
LEADERBOARD = "alpaca_eval/leaderboards/alpaca_eval_2__weighted_alpaca_eval_gpt4_turbo_leaderboard.csv"
WEIGHTS = "alpaca_eval/evaluator/length_controlled_v1_weights_baseline_gpt4_1106_preview.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--difficulty", required=True, help="AlpacaEval's df_gamed.csv")
    parser.add_argument("--data", default=os.environ.get("LONGSIFT_DATA", "../shared/data"))
    args = parser.parse_args()
    data = Path(args.data)
    score = alpacaeval.score_annotations(data / ANNOTATIONS, args.difficulty)
    with (data / LEADERBOARD).open() as handle:
        official = next(row for row in csv.DictReader(handle) if row[""] == "alpaca-7b")
    with (data / WEIGHTS).open() as handle:
        weights = next(row for row in csv.DictReader(handle) if row[""] == "alpaca-7b")
    print(f"LC win rate  ours {score.length_controlled_winrate:.4f}  leaderboard "
          f"{float(official['length_controlled_winrate']):.4f}")  # fmt: skip
    fitted = score.length_controlled_weights or {}
    for ours_name, theirs in zip(length_control.FEATURES, list(weights)[1:], strict=True):
        ours = fitted.get(ours_name, float("nan"))
        print(f"weight {ours_name:<28} ours {ours:+.4f}  official {float(weights[theirs]):+.4f}")


if __name__ == "__main__":
    main()
