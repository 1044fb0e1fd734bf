"""Does the judge just like long answers? Win rate against the length difference, on length-matched pairs,
how often the longer answer wins, and how much of the judge's verdicts a length-only judge reproduces.

A pair is one judged prompt: A's and B's response lengths and the prompt's outcome under one policy (A's view).
Win rate counts a tie as half a win: 100 * (wins + ties / 2) / n, so 50 means "no better than the other".
The relative length difference is (len_a - len_b) / max(len_a, len_b), in [-1, 1] (0 when both are empty).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from longsift.analyze.stats import bootstrap_mean_ci, cohen_kappa
from longsift.records import Outcome
from longsift.verdicts import PromptOutcome

SCORES = {"win": 1.0, "tie": 0.5, "lose": 0.0}
# Symmetric bins of the relative difference; the middle one is "within 10%".
DEFAULT_EDGES = (-1.0, -0.5, -0.25, -0.1, 0.1, 0.25, 0.5, 1.0)
DEFAULT_TOLERANCE = 0.10


@dataclass(frozen=True, slots=True)
class LengthPair:
    prompt_id: str
    eval_set: str
    len_a: int
    len_b: int
    outcome: Outcome

    @property
    def relative_difference(self) -> float:
        longest = max(self.len_a, self.len_b)
        return (self.len_a - self.len_b) / longest if longest else 0.0


def length_pairs(
    outcomes: Iterable[PromptOutcome], lengths_a: Mapping[tuple[str, str], int],
    lengths_b: Mapping[tuple[str, str], int], policy: str,
) -> tuple[list[LengthPair], dict[str, int]]:  # fmt: skip
    """Join outcomes with (eval_set, prompt_id) -> length maps; failed or unmatched prompts are counted apart."""
    pairs: list[LengthPair] = []
    skipped = {"failed": 0, "missing_length": 0}
    for item in outcomes:
        outcome = item.outcomes[policy]
        key = (item.eval_set, item.prompt_id)
        if outcome is None:
            skipped["failed"] += 1
        elif key not in lengths_a or key not in lengths_b:
            skipped["missing_length"] += 1
        else:
            pairs.append(LengthPair(item.prompt_id, item.eval_set, lengths_a[key], lengths_b[key], outcome))
    return pairs, skipped


def win_rate(pairs: Sequence[LengthPair], *, n_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Counts, win rate (ties count half) and its bootstrap 95% interval, in percent."""
    scores = np.array([SCORES[p.outcome] for p in pairs], dtype=float)
    low, high = bootstrap_mean_ci(scores, n_resamples=n_resamples, seed=seed)
    counts = {k: sum(p.outcome == k for p in pairs) for k in ("win", "tie", "lose")}
    return {
        "n": len(pairs), **counts,
        "win_rate": 100.0 * float(scores.mean()) if scores.size else None,
        "ci_low": None if low is None else 100.0 * low,
        "ci_high": None if high is None else 100.0 * high,
    }  # fmt: skip


def win_rate_by_length_difference(
    pairs: Sequence[LengthPair], edges: Sequence[float] = DEFAULT_EDGES, *, n_resamples: int = 1000, seed: int = 0
) -> list[dict[str, Any]]:
    """One row per bin [low, high) of the relative difference (the last bin also holds `high`).

    Each bin gets its own bootstrap stream, seeded from (seed, bin index), so adding a bin moves no other.
    """
    rows = []
    for i, (low, high) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        last = i == len(edges) - 2
        members = [p for p in pairs if low <= p.relative_difference < high or (last and p.relative_difference == high)]
        row = win_rate(members, n_resamples=n_resamples, seed=_bin_seed(seed, i))
        rows.append({"low": low, "high": high, **row})
    return rows


def _bin_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def length_matched_win_rate(
    pairs: Sequence[LengthPair], tolerance: float = DEFAULT_TOLERANCE, *, n_resamples: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Win rate on pairs whose lengths differ by at most `tolerance` of the longer one."""
    matched = [p for p in pairs if abs(p.relative_difference) <= tolerance + 1e-12]
    row = win_rate(matched, n_resamples=n_resamples, seed=seed)
    share = 100.0 * len(matched) / len(pairs) if pairs else None
    return {"tolerance": tolerance, **row, "share_of_pairs": share}


def longer_answer_wins(pairs: Sequence[LengthPair]) -> dict[str, Any]:
    """Among decided prompts (win or lose) with unequal lengths: how many went to the longer answer."""
    decided = [p for p in pairs if p.outcome != "tie"]
    longer = sum((p.outcome == "win") == (p.len_a > p.len_b) for p in decided if p.len_a != p.len_b)
    equal = sum(p.len_a == p.len_b for p in decided)
    unequal = len(decided) - equal
    return {
        "decided": len(decided), "equal_length": equal, "longer_won": longer, "shorter_won": unequal - longer,
        "longer_share": 100.0 * longer / unequal if unequal else None,
    }  # fmt: skip


def length_only_outcome(pair: LengthPair) -> Outcome:
    """What a length-only judge (the `longest` reference judge, in this analysis's unit) says of A: the longer
    answer wins, equal lengths tie."""
    return "win" if pair.len_a > pair.len_b else "lose" if pair.len_a < pair.len_b else "tie"


def length_only_agreement(pairs: Sequence[LengthPair]) -> dict[str, Any]:
    """How much of the judge's prompt outcomes a length-only judge reproduces on the same pairs: the share of
    prompts where both say the same (win/tie/lose from A's view), Cohen's kappa (agreement beyond chance; None
    when undefined), the confusion matrix (rows: the judge, columns: length only) and n (the judged pairs)."""
    judge = [p.outcome for p in pairs]
    stats = cohen_kappa(judge, [length_only_outcome(p) for p in pairs], tuple(SCORES))
    agreement_pct = None if stats["agreement"] is None else 100.0 * stats["agreement"]
    return {**stats, "agreement_pct": agreement_pct, "labels": list(SCORES)}


def length_bias(
    pairs: Sequence[LengthPair], *, edges: Sequence[float] = DEFAULT_EDGES, tolerance: float = DEFAULT_TOLERANCE,
    n_resamples: int = 1000, seed: int = 0,
) -> dict[str, Any]:  # fmt: skip
    """Every length-bias number for one comparison under one policy."""
    options = {"n_resamples": n_resamples, "seed": seed}
    longer_a = sum(p.len_a > p.len_b for p in pairs)
    return {
        "overall": win_rate(pairs, **options),
        "a_longer_share": 100.0 * longer_a / len(pairs) if pairs else None,
        "by_length_difference": win_rate_by_length_difference(pairs, edges, **options),
        "length_matched": length_matched_win_rate(pairs, tolerance, **options),
        "longer_answer_wins": longer_answer_wins(pairs),
        "length_only_agreement": length_only_agreement(pairs),
    }
