"""Read whatever a run directory holds into one `RunData`; what is missing or unreadable becomes a note, not a crash.

Win/tie/lose tables are recomputed from judgments.jsonl with `longsift.verdicts` (the same code the judge stage
uses), so the table and the prompt browser cannot disagree; summary.json is used where judgments are absent and
is otherwise checked against the recomputed counts.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longsift import layout
from longsift.errors import LongsiftError
from longsift.manifest import Manifest, read_manifest
from longsift.records import Example, Generation, Judgment
from longsift.report.names import judge_label
from longsift.verdicts import POLICIES, PromptOutcome, prompt_outcomes, tally

COUNT_KEYS = ("win", "tie", "lose", "failed", "n")


@dataclass
class Comparison:
    """One judge's verdicts on one pair of models."""

    folder: str
    model_a: str
    model_b: str
    judge: str
    tables: dict[str, dict[str, dict[str, Any]]]  # policy -> eval set | "all" -> verdicts.tally row
    table_source: str
    outcomes: list[PromptOutcome] = field(default_factory=list)
    judgments: dict[tuple[str, str], dict[str, Judgment]] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return f"{self.model_a} vs {self.model_b}" + (f" · judge {judge_label(self.judge)}" if self.judge else "")

    @property
    def flip_rate(self) -> float | None:
        judged = [o for o in self.outcomes if not o.failed]
        return 100.0 * sum(o.flipped for o in judged) / len(judged) if judged else None


@dataclass
class TrainingRun:
    name: str
    loss: list[dict[str, Any]]
    config: dict[str, Any] | None
    loss_png: Path | None


@dataclass
class RunData:
    run_dir: Path
    selection_files: list[Path] = field(default_factory=list)
    selection_summary: Any = None
    selection_manifests: dict[str, Manifest] = field(default_factory=dict)  # subset file name -> its manifest
    training: list[TrainingRun] = field(default_factory=list)
    generations: dict[tuple[str, str, str], Generation] = field(default_factory=dict)  # (model, set, prompt)
    comparisons: list[Comparison] = field(default_factory=list)
    alpacaeval: dict[str, dict[str, Any]] = field(default_factory=dict)
    mtbench: dict[str, dict[str, Any]] = field(default_factory=dict)
    analysis: dict[str, Any] | None = None
    openllm: dict[str, dict[str, Any]] = field(default_factory=dict)  # model -> openllm's summary
    refined: dict[str, list[Example]] = field(default_factory=dict)  # selection file -> its refined records
    notes: list[str] = field(default_factory=list)

    @property
    def models(self) -> list[str]:
        return sorted({model for model, _, _ in self.generations})


def collect(run_dir: Path) -> RunData:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise LongsiftError(f"{run_dir} is not a directory; give the run directory a recipe or the stages wrote")
    data = RunData(run_dir)
    for step in (_selection, _refinement, _training, _generations, _judging, _alpacaeval, _mtbench, _openllm,
                 _analysis):  # fmt: skip
        step(data)
    return data


def _safe(data: RunData, path: Path, read: Any) -> Any:
    """Run a reader; an unreadable file becomes a note in the report."""
    try:
        return read(path)
    except (LongsiftError, OSError, ValueError) as exc:
        data.notes.append(f"could not read {path.relative_to(data.run_dir)}: {exc}")
        return None


def _selection(data: RunData) -> None:
    data.selection_files = layout.selected_files(data.run_dir)
    folder = layout.select_dir(data.run_dir)
    if (folder / layout.SUMMARY).is_file():
        data.selection_summary = _safe(data, folder / layout.SUMMARY, layout.read_json)
    for path in data.selection_files:
        if (record := layout.selection_manifest(path)) is not None:
            data.selection_manifests[path.name] = record


def _training(data: RunData) -> None:
    for folder in layout.train_dirs(data.run_dir):
        loss_file, png = folder / layout.LOSS_JSON, folder / layout.LOSS_PNG
        loss = _safe(data, loss_file, layout.read_json) if loss_file.is_file() else None
        if loss is not None and not _is_loss_curve(loss):
            data.notes.append(f"{loss_file.relative_to(data.run_dir)} is not a list of {{step, loss}} objects")
            loss = None
        config_file = folder / layout.TRAIN_CONFIG
        config = _safe(data, config_file, layout.read_json) if config_file.is_file() else None
        if config is None and (record := read_manifest(folder)) is not None:
            config = record.options.get("config")  # the resolved TrainConfig `train` ran with
        if loss or config or png.is_file():
            data.training.append(TrainingRun(folder.name, loss or [], config, png if png.is_file() else None))


def _is_loss_curve(loss: Any) -> bool:
    return isinstance(loss, list) and all(isinstance(p, dict) and "step" in p and "loss" in p for p in loss)


def _generations(data: RunData) -> None:
    for path in layout.generation_files(data.run_dir):
        for generation in _safe(data, path, layout.read_generations) or []:
            data.generations[(generation.model, generation.eval_set, generation.prompt_id)] = generation


def _judging(data: RunData) -> None:
    for folder in layout.judge_dirs(data.run_dir):
        summary_file, judgments_file = folder / layout.SUMMARY, folder / layout.JUDGMENTS
        summary = _safe(data, summary_file, layout.read_json) if summary_file.is_file() else None
        judgments = _safe(data, judgments_file, layout.read_judgments) if judgments_file.is_file() else None
        if judgments:
            comparisons = _from_judgments(folder.name, judgments)
            if summary is not None and len(comparisons) == 1:
                _check_summary(data, folder, summary, comparisons[0])
            data.comparisons.extend(comparisons)
        elif isinstance(summary, dict) and any(policy in summary for policy in POLICIES):
            model_a, _, model_b = folder.name.partition(layout.PAIR_SEPARATOR)
            tables = {p: summary[p] for p in POLICIES if isinstance(summary.get(p), dict)}
            data.comparisons.append(Comparison(folder.name, model_a, model_b, "", tables, "summary.json"))
        else:
            data.notes.append(f"judge/{folder.name} holds neither judgments.jsonl nor a summary.json with policies")


def _from_judgments(folder: str, judgments: list[Judgment]) -> list[Comparison]:
    groups: dict[tuple[str, str, str], list[Judgment]] = defaultdict(list)
    for judgment in judgments:
        groups[(judgment.model_a, judgment.model_b, f"{judgment.judge}/{judgment.template}")].append(judgment)
    comparisons = []
    for (model_a, model_b, judge), members in sorted(groups.items()):
        outcomes = prompt_outcomes(members)
        tables = {policy: tally(outcomes, policy) for policy in POLICIES}
        by_prompt: dict[tuple[str, str], dict[str, Judgment]] = defaultdict(dict)
        for judgment in members:
            by_prompt[(judgment.eval_set, judgment.prompt_id)][judgment.order] = judgment
        comparison = Comparison(folder, model_a, model_b, judge, tables, "judgments.jsonl", outcomes, dict(by_prompt))
        comparisons.append(comparison)
    return comparisons


def _check_summary(data: RunData, folder: Path, summary: Any, comparison: Comparison) -> None:
    for policy, table in comparison.tables.items():
        theirs = summary.get(policy) if isinstance(summary, dict) else None
        for eval_set, row in table.items():
            other = (theirs or {}).get(eval_set) or {}
            if any(other.get(key) != row[key] for key in COUNT_KEYS if key in other):
                data.notes.append(
                    f"judge/{folder.name}/summary.json disagrees with judgments.jsonl on {policy}/{eval_set}; "
                    "the tables show the counts recomputed from judgments.jsonl"
                )
                return


def _alpacaeval(data: RunData) -> None:
    for path in layout.alpacaeval_files(data.run_dir):
        if path.name == layout.MANIFEST:
            continue
        result = _safe(data, path, layout.read_json)
        if isinstance(result, dict) and "win_rate" in result:
            data.alpacaeval[str(result.get("model") or result.get("generator") or path.stem)] = result
        elif result is not None:
            data.notes.append(f"alpacaeval/{path.name} has no win_rate")


def _mtbench(data: RunData) -> None:
    for path in layout.mtbench_files(data.run_dir):
        result = _safe(data, path, layout.read_mtbench)
        if result is not None:
            data.mtbench[str(result.get("model") or path.stem)] = result


def _analysis(data: RunData) -> None:
    path = layout.analysis_file(data.run_dir)
    if path.is_file():
        data.analysis = _safe(data, path, layout.read_json)


def _refinement(data: RunData) -> None:
    """Selection files whose records carry `metadata.refine_status`: the refine stage's outputs."""
    from longsift.formats.load import load_all

    for path in data.selection_files:
        records = _safe(data, path, lambda p: load_all(p)[0])
        if records and any("refine_status" in r.metadata for r in records):
            data.refined[path.name] = records


def _openllm(data: RunData) -> None:
    """`openllm.json` files (what `longsift openllm -o` writes: {"summary": ..., "raw": ...}) in the run."""
    found = [data.run_dir / "openllm.json", *sorted((data.run_dir / "openllm").glob("*.json"))]
    for path in (p for p in found if p.is_file() and p.name != layout.MANIFEST):
        result = _safe(data, path, layout.read_json)
        summary = result.get("summary") if isinstance(result, dict) else None
        if not isinstance(summary, dict):
            data.notes.append(f"{path.relative_to(data.run_dir)} has no Open LLM summary")
            continue
        samples = [t.get("n-samples") for t in (result.get("raw") or {}).values() if isinstance(t, dict)]
        per_split = [v for s in samples if isinstance(s, dict) for v in s.values() if isinstance(v, dict)]
        counted = [v.get("effective") for v in per_split]
        sizes = [n for n in counted if isinstance(n, int)]
        model = str(result.get("model") or summary.get("model") or (path.stem if path.stem != "openllm" else "model"))
        data.openllm[model] = {**summary, "_n": min(sizes) if sizes else None}
