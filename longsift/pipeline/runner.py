"""Run a recipe stage by stage: skip what is done, rerun what changed or died, record every stage.

Before the first stage runs, the whole recipe is checked and every problem is reported at once: stage kinds,
every stage's options and `llm:` block, `${...}` references (to stages that come earlier), and the paths it
will write, which must all stay inside the run folder (no `..`, no absolute names, no symlink leading out).
Inputs may live anywhere; they are only read.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from longsift import hub, layout
from longsift.errors import ConfigError, UsageError
from longsift.manifest import MANIFEST, Declared, describe_inputs, files_under, write_manifest
from longsift.outputs import check_writable, same_file, write_text
from longsift.pipeline import manifest
from longsift.pipeline.recipe import BUILTIN_REFERENCES, Recipe, StageSpec, references, substitute
from longsift.registry import Registry

STATE_DIR = ".stages"  # manifests live apart from the artifacts, whose layout the report reads
# Every folder of a run that a stage writes in: a symlink in one of them must not lead out of the run folder.
WRITTEN_FOLDERS = (*layout.STAGES, "models", "score", "report", "cache", STATE_DIR)
OUTPUT_KEYS = {"report": {"output", "markdown"}}  # what `${stage.KEY}` may name; every stage has "output"


@dataclass
class StageContext:
    """What a step needs: its resolved options and where things go."""

    recipe: Recipe
    spec: StageSpec
    options: dict[str, Any]
    run_dir: Path
    data_dir: Path
    console: Console

    @property
    def state_dir(self) -> Path:
        return self.run_dir / STATE_DIR / self.spec.name

    def option(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)

    def require(self, key: str) -> Any:
        if key not in self.options:
            raise ConfigError(f"stage {self.spec.name!r} ({self.spec.uses}) needs option {key!r}")
        return self.options[key]

    def check_options(self, allowed: Iterable[str]) -> None:
        unknown = sorted(set(self.options) - set(allowed))
        if unknown:
            raise ConfigError(f"stage {self.spec.name!r} ({self.spec.uses}): unknown options {unknown}")


Step = Callable[[StageContext], dict[str, str]]
STEPS: Registry[Step] = Registry("stage")
for _uses in ("select", "refine", "score", "train", "generate", "judge", "alpacaeval", "mtbench", "analyze", "report"):
    STEPS.register(_uses, f"longsift.pipeline.steps:{_uses}_step")
STEPS.register("tiny-model", "longsift.pipeline.steps:tiny_model_step")
STEPS.register("compare", "longsift.pipeline.study:compare_step")
STEPS.register("rank", "longsift.pipeline.study:rank_step")
STEPS.register("alpacaeval-export", "longsift.pipeline.study:alpacaeval_export_step")


# The options of each stage kind that name what it reads (files, folders, or hub ids, told apart by
# `longsift.manifest`): a change in any of them reruns the stage. Declared here, never guessed from the values.
INPUT_OPTIONS: dict[str, tuple[str, ...]] = {
    "select": ("source", "tokenizer"),
    "tiny-model": ("texts_from",),
    "refine": ("input", "prompt"),
    "score": ("input", "prompt"),
    "train": ("data", "model", "recipe"),
    "generate": ("model", "template"),
    "judge": ("a", "b", "template"),
    "mtbench": ("answers",),
    "alpacaeval": ("annotations", "model_outputs"),
    "analyze": ("tokenizer",),
    "compare": ("pool", "selections", "tokenizer", "encoder"),
    "alpacaeval-export": ("generations",),
}
# Stages that read the run folder itself: these folders of it are their inputs.
RUN_INPUTS: dict[str, tuple[str, ...]] = {
    "analyze": (layout.SELECT, layout.GENERATE, layout.JUDGE),
    "report": (*layout.STAGES, "score", "compare", "study"),
    "rank": (layout.JUDGE, layout.ALPACAEVAL),
}


def stage_inputs(uses: str, options: dict[str, Any], run_dir: Path) -> Declared:
    """What a stage reads, by role: its input options, and the run folders it reads."""
    declared: dict[str, Any] = {key: options[key] for key in INPUT_OPTIONS.get(uses, ()) if key in options}
    declared |= {
        f"run:{folder}": run_dir / folder for folder in RUN_INPUTS.get(uses, ()) if (run_dir / folder).exists()
    }
    return {key: value for key, value in declared.items() if isinstance(value, str | Path | list | None)}


def _declared_paths(uses: str, options: dict[str, Any], run_dir: Path) -> list[str]:
    """The declared inputs that are on disk (an output must never be one of them)."""
    values = [v for v in stage_inputs(uses, options, run_dir).values() if isinstance(v, str | Path)]
    return [str(v) for v in values if v != "" and Path(v).exists()]


@dataclass
class RunResult:
    run_dir: Path
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)


def run_recipe(
    recipe: Recipe,
    *,
    force: Iterable[str] = (),
    until: str | None = None,
    console: Console | None = None,
) -> RunResult:
    console = console or Console(stderr=True)
    run_dir = recipe.resolved_run_dir()
    data_dir = Path(recipe.data_dir)
    forced = set(force)
    for name in [*forced, *([until] if until else [])]:
        recipe.stage(name)  # fail early on a typo
    lookup = {"data": str(data_dir), "run": str(run_dir), "name": recipe.name, "seed": str(recipe.seed)}
    check_recipe(recipe, run_dir, lookup)
    run_dir.mkdir(parents=True, exist_ok=True)
    result = RunResult(run_dir)
    for spec in recipe.stages:
        outputs = _run_stage(recipe, spec, lookup, run_dir, data_dir, spec.name in forced, console, result)
        result.outputs[spec.name] = outputs
        lookup[spec.name] = outputs.get("output", "")
        lookup.update({f"{spec.name}.{key}": value for key, value in outputs.items()})
        if spec.name == until:
            break
    return result


def check_recipe(recipe: Recipe, run_dir: Path, lookup: dict[str, str]) -> None:
    """Every problem a recipe has that can be seen before it runs, all in one error; nothing has run yet."""
    from longsift.pipeline import steps

    problems: list[str] = []
    known = dict(lookup)
    writers: dict[Path, str] = {}  # each output file of the run belongs to one stage
    for spec in recipe.stages:
        problems += _reference_problems(recipe, spec, known)
        options = substitute(spec.options, known | _placeholders(recipe, run_dir, known))
        if spec.uses in STEPS:
            problems += steps.check_stage(spec.uses, spec.name, options, run_dir)
            problems += _path_problems(spec, options, run_dir)
            problems += _shared_outputs(spec, options, run_dir, writers)
        else:
            suggestions = STEPS.suggest(spec.uses)
            hint = f" (did you mean {' or '.join(map(repr, suggestions))}?)" if suggestions else ""
            problems.append(f"stage {spec.name!r}: unknown stage kind {spec.uses!r}{hint}; known: {STEPS.names()}")
        known[spec.name] = str(run_dir / spec.name)
        known.update({f"{spec.name}.{key}": str(run_dir / spec.name) for key in OUTPUT_KEYS.get(spec.uses, ())})
    problems += _symlinks_leading_out(run_dir) + _run_folder_problems(run_dir)
    if problems:
        count = f"{len(problems)} problems" if len(problems) > 1 else "a problem"
        raise ConfigError(f"recipe {recipe.name!r} has {count}, nothing ran: " + "; ".join(dict.fromkeys(problems)))


def _placeholders(recipe: Recipe, run_dir: Path, known: dict[str, str]) -> dict[str, str]:
    """Stand-ins for references the checks cannot resolve yet (their own problems are reported apart)."""
    placeholders = {name: str(run_dir / name) for name in (s.name for s in recipe.stages) if name not in known}
    for spec in recipe.stages:
        for key in references(spec.options):
            placeholders.setdefault(key, str(run_dir / key))
    return placeholders


def _reference_problems(recipe: Recipe, spec: StageSpec, known: dict[str, str]) -> list[str]:
    names = [s.name for s in recipe.stages]
    problems = []
    for key in dict.fromkeys(references(spec.options)):
        if key in known or key in BUILTIN_REFERENCES:
            continue
        stage, _, output = key.partition(".")
        if stage == spec.name:
            problems.append(f"stage {spec.name!r}: ${{{key}}} refers to the stage itself")
        elif stage in names and stage not in known:
            problems.append(f"stage {spec.name!r}: ${{{key}}} refers to stage {stage!r}, which runs later")
        elif stage in known and output:
            problems.append(f"stage {spec.name!r}: ${{{key}}}: stage {stage!r} has no output {output!r}")
        else:
            builtin = ", ".join(f"${{{name}}}" for name in BUILTIN_REFERENCES)
            problems.append(f"stage {spec.name!r}: unknown reference ${{{key}}}; known: {builtin} and earlier stages")
    return problems


def _path_problems(spec: StageSpec, options: dict[str, Any], run_dir: Path) -> list[str]:
    """Outputs leave the run folder by `..`, an absolute name or a symlink; or an output is one of the inputs."""
    from longsift.pipeline.steps import planned_outputs

    try:
        planned = [run_dir / STATE_DIR / spec.name, *planned_outputs(spec.uses, spec.name, options, run_dir)]
    except ConfigError:
        return []  # a bad name: reported by check_stage
    problems = [f"stage {spec.name!r}: {problem}" for path in planned if (problem := outside(path, run_dir))]
    for path in planned:
        blocking = [p for p in path.parents if p.is_relative_to(run_dir) and p.exists() and not p.is_dir()]
        if blocking:
            problems.append(f"stage {spec.name!r}: writes {path}, but {blocking[0]} is a file, not a folder")
    inputs = [Path(value) for value in _declared_paths(spec.uses, options, run_dir)]
    for path in planned:
        for source in inputs:
            if path.exists() and same_file(path, source):
                problems.append(f"stage {spec.name!r}: its output {path} is its input {source}; rename one")
    return problems


def _shared_outputs(spec: StageSpec, options: dict[str, Any], run_dir: Path, writers: dict[Path, str]) -> list[str]:
    """Two stages writing one file would each find the other's bytes and rerun forever."""
    from longsift.pipeline.steps import SHARED_OUTPUTS, planned_outputs

    try:
        planned = planned_outputs(spec.uses, spec.name, options, run_dir)
    except ConfigError:
        return []
    problems = []
    for path in planned:
        if path.relative_to(run_dir).as_posix() in SHARED_OUTPUTS:
            continue
        if path in writers:
            problems.append(f"stages {writers[path]!r} and {spec.name!r} both write {path}; give one another name")
        writers.setdefault(path, spec.name)
    return problems


def outside(path: Path, run_dir: Path) -> str | None:
    """Why `path` is not inside the run folder once `..` and symlinks are resolved (None when it is)."""
    root = run_dir.resolve()
    if not path.resolve().is_relative_to(root):
        return f"writes {path}, which resolves to {path.resolve()}, outside the run folder {root}"
    return None


def _run_folder_problems(run_dir: Path) -> list[str]:
    if run_dir.exists() and not run_dir.is_dir():
        return [f"the run folder {run_dir} is a file; choose another run_dir"]
    try:
        check_writable(run_dir / STATE_DIR / MANIFEST)
    except UsageError as exc:
        return [f"the run folder {run_dir} cannot be written: {exc}"]
    return []


def _symlinks_leading_out(run_dir: Path) -> list[str]:
    problems = []
    for folder in WRITTEN_FOLDERS:
        top = run_dir / folder
        if top.is_symlink() and (problem := outside(top, run_dir)):
            problems.append(f"{top} is a symlink: it {problem.removeprefix('writes ')}")
            continue
        for parent, folders, files in os.walk(top):
            for name in (*folders, *files):
                link = Path(parent) / name
                if link.is_symlink() and (problem := outside(link, run_dir)):
                    problems.append(f"{link} is a symlink: it {problem.removeprefix('writes ')}")
    return problems


def _run_stage(
    recipe: Recipe,
    spec: StageSpec,
    lookup: dict[str, str],
    run_dir: Path,
    data_dir: Path,
    forced: bool,
    console: Console,
    result: RunResult,
) -> dict[str, str]:
    options = substitute(spec.options, lookup)
    context = StageContext(recipe, spec, options, run_dir, data_dir, console)
    inputs = describe_inputs(stage_inputs(spec.uses, options, run_dir))  # before the step: as it read them
    if not forced:
        previous = manifest.read_stage(context.state_dir)
        reason = manifest.not_current(previous, spec.uses, options, inputs, run_dir, context.state_dir)
        if reason is None and previous is not None:
            console.print(f"[dim]skip[/] {spec.name} ({spec.uses}): done, options, inputs and outputs unchanged")
            result.skipped.append(spec.name)
            return dict(previous.outputs)
        if manifest.stage_manifest(context.state_dir).exists():
            reason = reason if previous is not None else "its manifest is of an older schema or unreadable"
            console.print(f"rerun {spec.name} ({spec.uses}): {reason}", highlight=False, markup=False)
    console.rule(f"{spec.name} ({spec.uses})")
    _confine(spec, options, run_dir)
    hub.check_stage(spec.name, options)  # offline: one line naming the key to set, not a minute of retries
    manifest.forget(context.state_dir)
    write_text(context.state_dir / "started", str(time.time()))
    started = time.time()
    outputs = STEPS.get(spec.uses)(context)
    _check_outputs_inside(spec, outputs, run_dir)
    write_manifest(
        context.state_dir, command=spec.uses, stage=spec.name, options=options, inputs=inputs, outputs=outputs,
        root=run_dir, started=started, path=manifest.stage_manifest(context.state_dir),
    )  # fmt: skip
    result.ran.append(spec.name)
    return outputs


def _check_outputs_inside(spec: StageSpec, outputs: dict[str, str], run_dir: Path) -> None:
    for key, value in outputs.items():
        for file in [Path(value), *files_under(Path(value))]:
            if problem := outside(file, run_dir):
                raise ConfigError(f"stage {spec.name!r}: its output {key!r} {problem}")


def _confine(spec: StageSpec, options: dict[str, Any], run_dir: Path) -> None:
    """The same path checks again with the references resolved, and the symlinks as they are now."""
    problems = _path_problems(spec, options, run_dir) + _symlinks_leading_out(run_dir)
    if problems:
        raise ConfigError(f"stage {spec.name!r} not run: " + "; ".join(problems))
