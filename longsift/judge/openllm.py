"""Open LLM Leaderboard (v1) benchmarks through lm-evaluation-harness, averaged the way the paper reports them.

The paper's average covers ARC (25-shot, acc_norm), MMLU (5-shot, acc), TruthfulQA-mc2 (0-shot) and
Winogrande (5-shot, acc). HellaSwag (10-shot, acc_norm) is offered but kept out of that average because the
LIMA training set contains HellaSwag examples. Scores are percentages. MMLU, as on the v1 leaderboard, is the
unweighted mean over its subjects when the harness reports them (the harness's own group score weights
subjects by size).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from longsift.errors import ConfigError, LongsiftError, MissingDependencyError
from longsift.outputs import atomic_output

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


def resolve_tasks(names: Sequence[str], local: bool = False, num_fewshot: int | None = None) -> list[OpenLLMTask]:
    """Our task names; with `local` (an include path was given) any other name is an lm_eval task of its own
    (shots: `num_fewshot`, else the task's YAML; metric: acc_norm, acc or the first one; not in the average)."""
    unknown = [name for name in names if name not in TASKS]
    if unknown and not local:
        raise ConfigError(
            f"unknown Open LLM task(s) {', '.join(unknown)}; known: {', '.join(TASKS)} "
            "(a task of your own needs --include-path DIR)"
        )
    return [TASKS.get(name) or OpenLLMTask(name, name, num_fewshot, "", False) for name in dict.fromkeys(names)]  # type: ignore[arg-type]


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
    candidates = (metric,) if metric else ("acc_norm", "acc", *(k.split(",")[0] for k in entry if "_stderr" not in k))
    for name in candidates:
        for key in (f"{name},none", name):
            if key in entry and isinstance(entry[key], int | float):
                return float(entry[key])
    raise ConfigError(f"lm_eval results for {task!r} have no {metric!r} metric (keys: {', '.join(entry)})")


def summarize(
    results_by_task: Mapping[str, Mapping[str, Any]], tasks: Sequence[OpenLLMTask] | None = None
) -> OpenLLMSummary:
    """Per-task percentages and the paper-style average from lm_eval results keyed by our task names."""
    tasks = list(tasks) if tasks is not None else resolve_tasks(list(results_by_task))
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


@dataclass(frozen=True, slots=True)
class HarnessOptions:
    """What reaches lm_eval besides the model: local task folders, chat template, per-sample logs, the seed."""

    include_path: Sequence[str] = ()
    chat_template: bool | str = False
    log_samples: Path | None = None  # a folder: one `<lm_eval task>.jsonl` of per-sample logs per task
    seed: int = 0
    num_fewshot: int | None = None  # for tasks of your own (ours keep the leaderboard's shots)


def run_openllm(
    model: str | None,
    tasks: Sequence[str] = DEFAULT_TASKS,
    limit: int | None = None,
    batch_size: int | str = 1,
    device: str | None = None,
    model_args: str = "",
    seed: int = 0,
    *,
    harness: HarnessOptions | None = None,
    endpoint: Endpoint | None = None,
    on_task: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[OpenLLMSummary, dict[str, Any]]:
    """Evaluate a model with lm_eval's `simple_evaluate`: a Hugging Face model (path or id) loaded once in this
    process, or an OpenAI-compatible completions `endpoint` (lm_eval's `local-completions`). One evaluation per
    task, so that each gets its own shot count; `on_task(partial)` sees the results after each one, so a crash
    in a later task loses nothing done. Returns the summary and the raw results by task, plain JSON types (the
    per-sample logs go to `harness.log_samples`)."""
    harness = harness or HarnessOptions(seed=seed)
    chosen = resolve_tasks(tasks, bool(harness.include_path), harness.num_fewshot)
    evaluate, manager = _harness(harness.include_path, any(task.name in TASKS for task in chosen))
    _check_tasks_exist(chosen, manager)
    lm = _load_model(model, model_args, batch_size, device, endpoint)
    raw: dict[str, Any] = {}
    for task in chosen:
        output = _evaluate_offline_aware(
            evaluate, task, model=lm, tasks=[task.harness_task], num_fewshot=task.num_fewshot, limit=limit,
            task_manager=manager, log_samples=harness.log_samples is not None,
            apply_chat_template=harness.chat_template,
            fewshot_as_multiturn=bool(harness.chat_template), random_seed=harness.seed,
            numpy_random_seed=harness.seed, torch_random_seed=harness.seed, fewshot_random_seed=harness.seed,
        )  # fmt: skip
        keep = ("results", "group_subtasks", "n-shot", "configs", "versions", "n-samples")
        raw[task.name] = plain({key: output[key] for key in keep if key in output})
        if harness.log_samples is not None:
            raw[task.name]["samples_files"] = write_samples(output.get("samples") or {}, harness.log_samples)
        if on_task is not None:
            on_task({"summary": summarize(raw, chosen[: len(raw)]).to_dict(), "raw": raw, "complete": False})
    return summarize(raw, chosen), raw


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An OpenAI-compatible server answering /v1/completions with prompt logprobs (`echo`), as vLLM does."""

    base_url: str
    model: str
    tokenizer: str  # the model's tokenizer (path or hub id): lm_eval tokenizes requests itself
    concurrency: int = 1


def _harness(include_path: Sequence[str], builtin: bool) -> tuple[Any, Any]:
    """lm_eval's entry point and a task index; lm_eval's own tasks are indexed only when needed (seconds)."""
    try:
        from lm_eval import simple_evaluate
        from lm_eval.tasks import TaskManager
    except ImportError:
        raise MissingDependencyError("lm-eval", "openllm", "`longsift openllm`") from None
    for folder in include_path:
        if not Path(folder).is_dir():
            raise ConfigError(f"--include-path {folder}: not a folder of lm_eval task YAML files")
    return simple_evaluate, TaskManager(include_path=list(include_path) or None, include_defaults=builtin)


def _check_tasks_exist(chosen: Sequence[OpenLLMTask], manager: Any) -> None:
    known = set(manager.all_tasks)
    missing = [t.harness_task for t in chosen if t.harness_task not in known]
    if missing:
        raise ConfigError(f"lm_eval knows no task {', '.join(missing)} (check --include-path and the YAML's `task:`)")


def _load_model(model: str | None, model_args: str, batch_size: int | str, device: str | None,
                endpoint: Endpoint | None) -> Any:  # fmt: skip
    """One model object for every task (lm_eval would load a model given by name once per call)."""
    from lm_eval.api.registry import get_model

    extra = {"batch_size": batch_size, "device": device or _default_device()}
    if endpoint is not None:
        arguments = (f"model={endpoint.model},base_url={endpoint.base_url.rstrip('/')}/completions,"
                     f"tokenizer_backend=huggingface,tokenizer={endpoint.tokenizer},"
                     f"num_concurrent={endpoint.concurrency},max_retries=2,"
                     "add_bos_token=True")  # fmt: skip  # as the in-process model: the same prompts, the same scores
        try:
            return get_model("local-completions").create_from_arg_string(
                ",".join(p for p in (arguments, model_args) if p), {"batch_size": batch_size}
            )
        except ModuleNotFoundError:
            raise LongsiftError("--base-url needs lm-eval's API models: pip install 'lm-eval[api]'") from None
    if not model:
        raise ConfigError("give a model path or id, or --base-url with --model-name and --tokenizer")
    arguments = ",".join(part for part in (f"pretrained={model}", model_args) if part)
    try:
        return get_model("hf").create_from_arg_string(arguments, extra)
    except OSError as exc:
        raise ConfigError(f"cannot load model {model!r}: {_offline_reason(exc) or str(exc).splitlines()[0]}") from None


def _default_device() -> str:
    """lm_eval's HFLM assumes cuda; on a machine without it that is a crash, not a fallback."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _evaluate_offline_aware(evaluate: Any, task: OpenLLMTask, **arguments: Any) -> dict[str, Any]:
    try:
        output = evaluate(**arguments)
    except Exception as exc:
        reason = _offline_reason(exc)
        if reason is None:
            raise
        raise LongsiftError(
            f"Open LLM task {task.name!r} ({task.harness_task}) needs its dataset from the Hugging Face hub, and "
            f"{reason}: run it once online (the datasets cache keeps it), or give a local task with --include-path"
        ) from None
    if output is None:
        raise LongsiftError(f"lm_eval returned no results for {task.harness_task!r}")
    return output


def _offline_reason(exc: BaseException) -> str | None:
    """Why the hub was out of reach, when that is what `exc` (or its cause) says; else None."""
    offline = [v for v in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE") if os.environ.get(v, "").lower() in ("1", "true")]
    seen: BaseException | None = exc
    while seen is not None:
        text = f"{type(seen).__name__}: {seen}"
        if any(mark in text for mark in _OFFLINE_MARKS):
            verb = "is" if len(offline) == 1 else "are"
            return f"{' and '.join(offline)} {verb} set" if offline else "the hub cannot be reached"
        seen = seen.__cause__ or seen.__context__
    return None


_OFFLINE_MARKS = ("OfflineModeIsEnabled", "offline mode", "HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE",
                  "Couldn't reach", "ConnectionError", "LocalEntryNotFoundError", "DatasetNotFoundError")  # fmt: skip


def write_samples(samples: Mapping[str, Any], folder: Path) -> list[str]:
    """lm_eval's logged samples, one JSON line each, in `folder/<task>.jsonl` (whole or not at all)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for task, rows in samples.items():
        path = folder / f"{task}.jsonl"
        with atomic_output(path) as handle:
            for row in rows:
                handle.write(orjson.dumps(plain(row)) + b"\n")
        written.append(str(path))
    return written


def plain(value: Any) -> Any:
    """`value` with only JSON types: numpy scalars and arrays become numbers and lists, tuples lists, keys strings,
    NaN and infinities None (JSON has none), anything else its str()."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "shape", None) == ():
        value = item()
    elif callable(getattr(value, "tolist", None)):
        return plain(value.tolist())
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        number = int(value) if isinstance(value, int) and not isinstance(value, bool) else float(value)
        return None if isinstance(number, float) and not math.isfinite(number) else number
    return str(value)
