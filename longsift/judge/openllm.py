"""Open LLM Leaderboard (v1) benchmarks through lm-evaluation-harness, averaged the way the paper reports them.

The paper's average covers ARC (25-shot, acc_norm), MMLU (5-shot, acc), TruthfulQA-mc2 (0-shot) and
Winogrande (5-shot, acc). HellaSwag (10-shot, acc_norm) is offered but kept out of that average because the
LIMA training set contains HellaSwag examples. Scores are percentages. MMLU, as on the v1 leaderboard, is the
unweighted mean over its subjects when the harness reports them (the harness's own group score weights
subjects by size).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from longsift.errors import ConfigError, MissingDependencyError

HELLASWAG_NOTE = "HellaSwag is excluded from the average: LIMA's training data contains HellaSwag examples"


@dataclass(frozen=True, slots=True)
class OpenLLMTask:
    name: str
    harness_task: str
    num_fewshot: int
    metric: str
    in_average: bool = True


TASKS: dict[str, OpenLLMTask] = {
    "arc": OpenLLMTask("arc", "arc_challenge", 25, "acc_norm"),
    "mmlu": OpenLLMTask("mmlu", "mmlu", 5, "acc"),
    "truthfulqa": OpenLLMTask("truthfulqa", "truthfulqa_mc2", 0, "acc"),
    "winogrande": OpenLLMTask("winogrande", "winogrande", 5, "acc"),
    "hellaswag": OpenLLMTask("hellaswag", "hellaswag", 10, "acc_norm", in_average=False),
}
DEFAULT_TASKS = ("arc", "mmlu", "truthfulqa", "winogrande")


@dataclass(frozen=True, slots=True)
class OpenLLMSummary:
    scores: dict[str, float]  # task name -> percent
    average: float | None  # over the tasks in the paper's average that were run
    average_tasks: list[str]
    average_with_hellaswag: float | None
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_tasks(names: Sequence[str]) -> list[OpenLLMTask]:
    unknown = [name for name in names if name not in TASKS]
    if unknown:
        raise ConfigError(f"unknown Open LLM task(s) {', '.join(unknown)}; known: {', '.join(TASKS)}")
    return [TASKS[name] for name in dict.fromkeys(names)]


def task_score(task: OpenLLMTask, results: Mapping[str, Any]) -> float:
    """The task's score in percent from an lm_eval results dict (the `simple_evaluate` output or its "results")."""
    table = results.get("results", results)
    if task.name == "mmlu":
        subjects = _mmlu_subjects(table, results.get("group_subtasks", {}))
        if subjects:
            return 100 * sum(_metric(table[s], task.metric, s) for s in subjects) / len(subjects)
    if task.harness_task not in table:
        raise ConfigError(f"lm_eval results have no {task.harness_task!r} entry (tasks: {', '.join(table)})")
    return 100 * _metric(table[task.harness_task], task.metric, task.harness_task)


def _mmlu_subjects(table: Mapping[str, Any], groups: Mapping[str, Any]) -> list[str]:
    """Leaf MMLU tasks: `mmlu_<subject>` entries that are not themselves groups (humanities, stem, ...)."""
    return sorted(
        name for name in table
        if name.startswith("mmlu_") and name not in groups and name not in _MMLU_CATEGORIES
    )  # fmt: skip


_MMLU_CATEGORIES = {"mmlu_humanities", "mmlu_stem", "mmlu_social_sciences", "mmlu_other"}


def _metric(entry: Mapping[str, Any], metric: str, task: str) -> float:
    for key in (f"{metric},none", metric):
        if key in entry:
            return float(entry[key])
    raise ConfigError(f"lm_eval results for {task!r} have no {metric!r} metric (keys: {', '.join(entry)})")


def summarize(results_by_task: Mapping[str, Mapping[str, Any]]) -> OpenLLMSummary:
    """Per-task percentages and the paper-style average from lm_eval results keyed by our task names."""
    tasks = resolve_tasks(list(results_by_task))
    scores = {task.name: task_score(task, results_by_task[task.name]) for task in tasks}
    averaged = [task.name for task in tasks if task.in_average]
    average = sum(scores[name] for name in averaged) / len(averaged) if averaged else None
    notes = []
    missing = [name for name in DEFAULT_TASKS if name not in scores]
    if missing:
        notes.append(f"average over {', '.join(averaged) or 'nothing'} only: {', '.join(missing)} not run")
    with_hellaswag = None
    if "hellaswag" in scores:
        notes.append(HELLASWAG_NOTE)
        with_hellaswag = sum(scores.values()) / len(scores)
    return OpenLLMSummary(scores, average, averaged, with_hellaswag, notes)


def run_openllm(
    model: str,
    tasks: Sequence[str] = DEFAULT_TASKS,
    limit: int | None = None,
    batch_size: int | str = 1,
    device: str | None = None,
    model_args: str = "",
    seed: int = 0,
) -> tuple[OpenLLMSummary, dict[str, Any]]:
    """Evaluate a Hugging Face model (path or id) with lm_eval's `simple_evaluate`, one call per task so that
    each gets its own shot count. Returns the summary and the raw results by task (without samples)."""
    chosen = resolve_tasks(tasks)
    try:
        from lm_eval import simple_evaluate
    except ImportError:
        raise MissingDependencyError("lm-eval", "openllm", "`longsift openllm`") from None
    arguments = ",".join(part for part in (f"pretrained={model}", model_args) if part)
    raw: dict[str, Any] = {}
    for task in chosen:
        output = simple_evaluate(
            model="hf", model_args=arguments, tasks=[task.harness_task], num_fewshot=task.num_fewshot,
            limit=limit, batch_size=batch_size, device=device, log_samples=False, random_seed=seed,
            numpy_random_seed=seed, torch_random_seed=seed,
        )  # fmt: skip
        raw[task.name] = {key: output[key] for key in ("results", "group_subtasks", "n-shot") if key in output}
    return summarize(raw), raw
