"""Judge behaviour: position bias (does the verdict change with the order?) and agreement between judges.

A judge is a (judge model, template) pair, named "model/template". Judgments are paired per model pair, so one
judge that compared several pairs of models is pooled over all of them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from itertools import combinations
from typing import Any

from longsift.analyze.stats import cohen_kappa
from longsift.records import Judgment
from longsift.verdicts import POLICIES, PromptOutcome, prompt_outcomes

OUTCOME_LABELS = ("win", "tie", "lose")


def judge_name(judgment: Judgment) -> str:
    return f"{judgment.judge}/{judgment.template}"


def outcomes_by_judge(judgments: Iterable[Judgment]) -> dict[str, dict[tuple[str, str], list[PromptOutcome]]]:
    """judge -> (model_a, model_b) -> paired outcomes."""
    groups: dict[tuple[str, str, str], list[Judgment]] = defaultdict(list)
    for judgment in judgments:
        groups[(judge_name(judgment), judgment.model_a, judgment.model_b)].append(judgment)
    result: dict[str, dict[tuple[str, str], list[PromptOutcome]]] = defaultdict(dict)
    for (judge, model_a, model_b), members in sorted(groups.items()):
        result[judge][(model_a, model_b)] = prompt_outcomes(members)
    return dict(result)


def position_bias(judgments: Iterable[Judgment]) -> list[dict[str, Any]]:
    """Per judge: how often the verdict flips with the order, and which position it favours.

    `flip_rate`: share of prompts judged in both orders whose two verdicts differ (verdicts.PromptOutcome.flipped).
    `first_position_share`: among single judgments that picked a side, the share won by the answer shown first
    (order "ab" shows A first, "ba" shows B first); 50% means no position preference.
    """
    judgments = list(judgments)
    rows = []
    for judge, pairs in outcomes_by_judge(judgments).items():
        items = [item for outcomes in pairs.values() for item in outcomes]
        judged = [item for item in items if not item.failed]
        flipped = sum(item.flipped for item in judged)
        first_always = sum(item.verdict_ab == "a" and item.verdict_ba == "b" for item in judged)
        second_always = sum(item.verdict_ab == "b" and item.verdict_ba == "a" for item in judged)
        sided = [j for j in judgments if judge_name(j) == judge and j.status == "ok" and j.verdict in ("a", "b")]
        first = sum((j.order == "ab") == (j.verdict == "a") for j in sided)
        rows.append({
            "judge": judge, "prompts": len(items), "judged": len(judged), "failed": len(items) - len(judged),
            "flipped": flipped, "flip_rate": 100.0 * flipped / len(judged) if judged else None,
            "first_always_won": first_always, "second_always_won": second_always,
            "sided_judgments": len(sided), "first_position_share": 100.0 * first / len(sided) if sided else None,
        })  # fmt: skip
    return rows


def judge_agreement(judgments: Iterable[Judgment]) -> list[dict[str, Any]]:
    """For every two judges that judged the same prompts of the same model pair: agreement and Cohen's kappa
    over win/tie/lose, per policy. Prompts failed by either judge are left out (and counted)."""
    by_judge = outcomes_by_judge(judgments)
    rows = []
    for first, second in combinations(sorted(by_judge), 2):
        keyed = [_keyed(by_judge[first]), _keyed(by_judge[second])]
        shared = sorted(keyed[0].keys() & keyed[1].keys())
        if not shared:
            continue
        row: dict[str, Any] = {"judge_1": first, "judge_2": second, "shared_prompts": len(shared), "policies": {}}
        for policy in POLICIES:
            both = [(keyed[0][k].outcomes[policy], keyed[1][k].outcomes[policy]) for k in shared]
            rated = [(a, b) for a, b in both if a is not None and b is not None]
            stats = cohen_kappa([a for a, _ in rated], [b for _, b in rated], OUTCOME_LABELS)
            agreement_pct = None if stats["agreement"] is None else 100.0 * stats["agreement"]
            row["policies"][policy] = {
                **stats, "agreement_pct": agreement_pct, "failed": len(both) - len(rated),
                "labels": list(OUTCOME_LABELS),
            }  # fmt: skip
        rows.append(row)
    return rows


def _keyed(pairs: dict[tuple[str, str], list[PromptOutcome]]) -> dict[tuple[str, str, str, str], PromptOutcome]:
    return {(*models, o.eval_set, o.prompt_id): o for models, outcomes in pairs.items() for o in outcomes}
