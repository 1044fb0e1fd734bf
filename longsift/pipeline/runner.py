"""Run a recipe stage by stage: skip what is done, rerun what changed or died, record every stage."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from longsift.errors import ConfigError
from longsift.pipeline import manifest
from longsift.pipeline.recipe import Recipe, StageSpec, substitute
from longsift.registry import Registry

STATE_DIR = ".stages"  # manifests live apart from the artifacts, whose layout the report reads


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
    run_dir.mkdir(parents=True, exist_ok=True)
    data_dir = Path(recipe.data_dir)
    forced = set(force)
    for name in [*forced, *([until] if until else [])]:
        recipe.stage(name)  # fail early on a typo
    lookup = {"data": str(data_dir), "run": str(run_dir), "name": recipe.name, "seed": str(recipe.seed)}
    result = RunResult(run_dir)
    _check_stages(recipe)
    for spec in recipe.stages:
        outputs = _run_stage(recipe, spec, lookup, run_dir, data_dir, spec.name in forced, console, result)
        result.outputs[spec.name] = outputs
        lookup[spec.name] = outputs.get("output", "")
        lookup.update({f"{spec.name}.{key}": value for key, value in outputs.items()})
        if spec.name == until:
            break
    return result


def _check_stages(recipe: Recipe) -> None:
    """An unknown stage kind or option fails before anything runs, not an hour into the run."""
    from longsift.pipeline.steps import OPTIONS

    for spec in recipe.stages:
        STEPS.get(spec.uses)
        unknown = sorted(set(spec.options) - OPTIONS.get(spec.uses, set(spec.options)))
        if unknown:
            raise ConfigError(f"stage {spec.name!r} ({spec.uses}): unknown options {unknown}")


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
    digest = manifest.options_digest(spec.uses, options)
    inputs = manifest.input_digests(options)
    previous = manifest.read_manifest(context.state_dir)
    if not forced and manifest.is_current(previous, digest, inputs) and previous is not None:
        console.print(f"[dim]skip[/] {spec.name} ({spec.uses}): done, options and inputs unchanged")
        result.skipped.append(spec.name)
        return dict(previous["outputs"])
    console.rule(f"{spec.name} ({spec.uses})")
    context.state_dir.mkdir(parents=True, exist_ok=True)
    (context.state_dir / "started").write_text(str(time.time()))
    started = time.time()
    outputs = STEPS.get(spec.uses)(context)
    manifest.write_manifest(
        context.state_dir,
        {
            "stage": spec.name,
            "uses": spec.uses,
            "status": "complete",
            "options": options,
            "options_digest": digest,
            "inputs": inputs,
            "outputs": outputs,
            "versions": manifest.versions(),
            "seconds": round(time.time() - started, 3),
        },
    )
    result.ran.append(spec.name)
    return outputs
