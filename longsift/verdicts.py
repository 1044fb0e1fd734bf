"""Turning two judgments of one prompt (both orders) into one outcome, by the two policies we report.

`paper`: +1 for each order A wins, -1 for each order it loses; win if the sum >= 1, lose if <= -1, else tie
(the paper's and AlpaGasus' rule). `strict`: FastChat's rule, a win only when both orders agree; any
disagreement is a tie. A prompt with a failed judgment in either order has no outcome (counted as failed).

Beside the counts, each tally row says how often the verdict flipped with the order (position bias) and how
often the longer answer won a decided prompt (length bias), from the answer lengths judgments carry in their
metadata (`length_a`, `length_b`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from longsift.records import Judgment, Outcome, Verdict

POLICIES = ("paper", "strict")
_POINTS = {"a": 1, "b": -1, "tie": 0}


def paper_outcome(first: Verdict, second: Verdict) -> Outcome:
    total = _POINTS[first] + _POINTS[second]
    return "win" if total >= 1 else "lose" if total <= -1 else "tie"


def strict_outcome(first: Verdict, second: Verdict) -> Outcome:
    if first == second == "a":
        return "win"
    if first == second == "b":
        return "lose"
    return "tie"


OUTCOME_RULES = {"paper": paper_outcome, "strict": strict_outcome}


@dataclass(frozen=True, slots=True)
class PromptOutcome:
    """Both orders of one prompt, and what each policy makes of them (None: a judgment failed)."""

    prompt_id: str
    eval_set: str
    verdict_ab: Verdict | None
    verdict_ba: Verdict | None
    outcomes: dict[str, Outcome | None]
    length_a: int | None = None
    length_b: int | None = None

    @property
    def failed(self) -> bool:
        return self.verdict_ab is None or self.verdict_ba is None

    @property
    def flipped(self) -> bool:
        """The verdict changed with the order of presentation (position bias)."""
        return not self.failed and self.verdict_ab != self.verdict_ba

    def longer_won(self, policy: str) -> bool | None:
        """Whether the longer answer won under `policy`; None for a tie, a failure or answers of equal length."""
        outcome = self.outcomes[policy]
        if outcome not in ("win", "lose") or self.length_a is None or self.length_b is None:
            return None
        if self.length_a == self.length_b:
            return None
        return (outcome == "win") == (self.length_a > self.length_b)


def prompt_outcomes(judgments: Iterable[Judgment]) -> list[PromptOutcome]:
    """Pair up the two orders of every (eval_set, prompt); a missing order counts as failed."""
    pairs: dict[tuple[str, str], dict[str, Judgment]] = defaultdict(dict)
    for judgment in judgments:
        pairs[(judgment.eval_set, judgment.prompt_id)][judgment.order] = judgment
    results = []
    for (eval_set, prompt_id), orders in pairs.items():
        ab = orders.get("ab")
        ba = orders.get("ba")
        verdict_ab = ab.verdict if ab is not None and ab.status == "ok" else None
        verdict_ba = ba.verdict if ba is not None and ba.status == "ok" else None
        outcomes: dict[str, Outcome | None] = {}
        for policy, rule in OUTCOME_RULES.items():
            both = verdict_ab is not None and verdict_ba is not None
            outcomes[policy] = rule(verdict_ab, verdict_ba) if both else None  # type: ignore[arg-type]
        lengths = next((j.metadata for j in (ab, ba) if j is not None and "length_a" in j.metadata), {})
        results.append(
            PromptOutcome(
                prompt_id, eval_set, verdict_ab, verdict_ba, outcomes, lengths.get("length_a"), lengths.get("length_b")
            )
        )
    return results


def tally(outcomes: Iterable[PromptOutcome], policy: str) -> dict[str, dict[str, Any]]:
    """Per eval set plus "all": counts win/tie/lose/failed/n, percentages over judged prompts, winning score.

    The AlpaGasus winning score is 1 + (wins - losses) / judged; percentages and the score leave failed
    prompts out of the denominator, and `failed` says how many they were. `flipped` / `flip_pct`: judged
    prompts whose two verdicts differ. `longer_won` of `decided_by_length` (decided prompts whose answers
    differ in length) gives `longer_win_pct`.
    """
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for item in outcomes:
        outcome = item.outcomes[policy]
        longer_won = item.longer_won(policy)
        for key in (item.eval_set, "all"):
            counts[key]["failed" if outcome is None else outcome] += 1
            counts[key]["n"] += 1
            counts[key]["flipped"] += item.flipped
            if longer_won is not None:
                counts[key]["decided_by_length"] += 1
                counts[key]["longer_won"] += longer_won
    return {key: _row(counter) for key, counter in sorted(counts.items(), key=lambda kv: (kv[0] == "all", kv[0]))}


def _row(counter: Counter[str]) -> dict[str, Any]:
    row: dict[str, Any] = {k: counter[k] for k in ("win", "tie", "lose", "failed", "n")}
    judged = row["n"] - row["failed"]
    row["judged"] = judged
    for k in ("win", "tie", "lose"):
        row[f"{k}_pct"] = 100.0 * row[k] / judged if judged else None
    row["winning_score"] = 1 + (row["win"] - row["lose"]) / judged if judged else None
    row["flipped"] = counter["flipped"]
    row["flip_pct"] = 100.0 * row["flipped"] / judged if judged else None
    row["longer_won"], row["decided_by_length"] = counter["longer_won"], counter["decided_by_length"]
    row["longer_win_pct"] = 100.0 * row["longer_won"] / row["decided_by_length"] if row["decided_by_length"] else None
    return row


def figure_percentages(table: dict[str, dict[str, Any]]) -> dict[str, dict[str, int]]:
    """The bars of the paper's Figure 2 from a paper-policy table, as utils/result_graph.py graph() drew them:
    int() truncates win and tie percentages of all the set's prompts, and the base model gets the rest
    (100 - win - tie), so the rounding always lands on "lose". Per test set; the figure has no total."""
    bars = {}
    for eval_set, row in table.items():
        if eval_set == "all" or not row.get("n"):
            continue
        win, tie = int(row["win"] / row["n"] * 100), int(row["tie"] / row["n"] * 100)
        bars[eval_set] = {"win": win, "tie": tie, "lose": 100 - win - tie}
    return bars
