"""Recipe steps of a selection study: `compare` (the arms' selections side by side) and `rank` (the arms ordered
by how they fare against the reference arm, for the report).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from longsift import layout
from longsift.analyze.compare import CompareOptions
from longsift.options import Options, option
from longsift.pipeline.runner import StageContext
from longsift.verdicts import POLICIES

RANKING = Path("study") / "ranking.json"  # what the report's ranking table reads (longsift.report.selection_compare)


class CompareStep(CompareOptions):
    selections: list[str] = option(..., "The selections to compare (files; `${stage}` of select stages).", cli=False)


class ExportStep(Options):
    generations: str = option(..., "A generation file holding AlpacaEval answers (`${generate-stage}`).", cli=False)
    model_name: str | None = option(None, "Generator name (default: the records' model name).", cli=False)


class RankStep(Options):
    reference: str = option(..., "The reference arm's model name (model B of every comparison ranked).", cli=False)
    arms: list[str] = option([], "The arms to rank, by model name (default: every model judged against the "
                             "reference).", cli=False)  # fmt: skip
    policy: str = option("paper", f"The verdict policy ranked by: {', '.join(POLICIES)}.", cli=False)


def compare_step(context: StageContext) -> dict[str, str]:
    from longsift.analyze.compare import write_comparison
    from longsift.pipeline.steps import step_options

    step = step_options(context, CompareStep)
    out = context.run_dir / "compare" / context.spec.name
    result = write_comparison(step.selections, step.narrowed(CompareOptions), out, stage=context.spec.name,
                              root=context.run_dir)  # fmt: skip
    context.console.print(f"compared {len(result['selections'])} selections -> {out}")
    return {"output": str(out / "compare.json")}


EXPORTS = "alpacaeval_outputs"  # RUN/alpacaeval_outputs/<stage>.json: what alpaca_eval's CLI reads


def alpacaeval_export_step(context: StageContext) -> dict[str, str]:
    """alpaca_eval's model_outputs.json of an arm (`longsift alpacaeval export` as a step): annotate it with
    `alpaca_eval evaluate --model_outputs FILE`, then score the annotations with an `alpacaeval` stage."""
    from longsift.generations import iter_generations
    from longsift.judge.alpacaeval import export_model_outputs
    from longsift.pipeline.steps import step_options

    step = step_options(context, ExportStep)
    out = context.run_dir / EXPORTS / f"{context.spec.name}.json"
    written = export_model_outputs(iter_generations(Path(step.generations)), out, step.model_name)
    context.console.print(f"wrote {written} AlpacaEval outputs -> {out}")
    return {"output": str(out)}


def rank_step(context: StageContext) -> dict[str, str]:
    from longsift.errors import ConfigError
    from longsift.pipeline.steps import step_options

    step = step_options(context, RankStep)
    if step.policy not in POLICIES:
        raise ConfigError(f"stage {context.spec.name!r}: policy {step.policy!r} is none of {list(POLICIES)}")
    ranking = rank_arms(context.run_dir, step.reference, step.arms, step.policy)
    out = context.run_dir / RANKING
    layout.write_json(ranking, out)
    return {"output": str(out)}


def rank_arms(run_dir: Path, reference: str, arms: list[str], policy: str) -> dict[str, Any]:
    """Each arm's verdicts against `reference` over every test set (judge/ARM__vs__REFERENCE), best winning
    score first; its AlpacaEval win rate beside it where the run holds one. The reference arm itself is listed
    with winning score 1 (it ties itself by definition)."""
    from longsift.report.collect import collect

    data = collect(run_dir)
    rows: dict[str, dict[str, Any]] = {}
    for comparison in data.comparisons:
        if comparison.model_b != reference or (arms and comparison.model_a not in arms):
            continue
        overall = comparison.tables.get(policy, {}).get("all") or {}
        rows.setdefault(comparison.model_a, {
            "arm": comparison.model_a, "judge": comparison.judge, "winning_score": overall.get("winning_score"),
            "win_pct": overall.get("win_pct"), "tie_pct": overall.get("tie_pct"), "lose_pct": overall.get("lose_pct"),
            "judged": overall.get("judged"), "failed": overall.get("failed"), "folder": comparison.folder,
        })  # fmt: skip
    rows.setdefault(reference, {"arm": reference, "winning_score": 1.0, "reference": True})
    missing = [arm for arm in arms if arm not in rows]
    for name, row in rows.items():
        score = data.alpacaeval.get(name) or {}
        row["alpacaeval_win_rate"] = score.get("win_rate")
        row["alpacaeval_lc_win_rate"] = score.get("length_controlled_winrate")
    ordered = sorted(rows.values(), key=lambda r: (r["winning_score"] is None, -(r["winning_score"] or 0), r["arm"]))
    rule = (f"Winning score = 1 + (wins - losses) / judged against {reference} over every test set, {policy} "
            "policy (1 = as good as the reference); ties broken by name.")  # fmt: skip
    return {"reference": reference, "policy": policy, "rule": rule, "arms": ordered, "not_judged": missing}
