"""Recipes: a pydantic model of a whole run. Precedence: defaults < YAML < command-line `--set key=value`.

Stage options may refer to earlier stages' outputs and to folders with `${...}`:
`${data}` (the shared data folder), `${run}` (the run folder), `${STAGE}` (that stage's main output) and
`${STAGE.KEY}` (another output it declared). Unknown keys anywhere are an error.

Recipes are read with the bounded loader of `longsift.safe_yaml` (size, depth, expanded aliases, duplicate
keys); `load_recipe` takes other limits.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from longsift import safe_yaml
from longsift.errors import ConfigError
from longsift.options import Options, apply_overrides, option

RECIPES_DIR = Path(__file__).resolve().parents[2] / "recipes"
_REFERENCE = re.compile(r"\$\{([A-Za-z0-9_.-]+)\}")
BUILTIN_REFERENCES = ("data", "run", "name", "seed")


class RunOptions(Options):
    """The flags of `longsift run`."""

    overrides: list[str] = option(
        [], "Override a recipe key (repeatable): stages.NAME.with.KEY=VALUE, e.g. stages.train.with.epochs=2, or "
        "stages.select.with.source=alpaca_data.json for a local file instead of a Hub id.", flags=("--set",),
    )  # fmt: skip
    force: list[str] = option([], "Rerun this stage even if it is done (repeatable).")
    until: str | None = option(None, "Stop after this stage.")
    output: str | None = option(
        None, "Run folder: where the run's artifacts go (default: the recipe's run_dir, runs/NAME).",
        flags=("-o", "--output"), deprecated=("--run-dir",),
    )  # fmt: skip


class StageSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    uses: str
    options: dict[str, Any] = Field(default_factory=dict, alias="with")


def default_data_dir() -> Path:
    from longsift.layout import data_dir  # $LONGSIFT_DATA, else the checkout's ../shared/data

    return data_dir(required=False)


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_+-][A-Za-z0-9._+-]*$")  # a file name: the default run_dir is runs/<name>
    description: str = ""
    run_dir: str = "runs/${name}"
    data_dir: str = Field(default_factory=lambda: str(default_data_dir()))
    seed: int = 0
    stages: list[StageSpec]

    @model_validator(mode="after")
    def _unique_names(self) -> Recipe:
        names = [s.name for s in self.stages]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"stage names must be unique: {duplicates}")
        return self

    def stage(self, name: str) -> StageSpec:
        for spec in self.stages:
            if spec.name == name:
                return spec
        raise ConfigError(f"recipe {self.name!r} has no stage {name!r}; stages: {[s.name for s in self.stages]}")

    def resolved_run_dir(self) -> Path:
        return Path(self.run_dir.replace("${name}", self.name))


def load_recipe(
    source: str | Path,
    overrides: list[str] | None = None,
    *,
    max_bytes: int = safe_yaml.MAX_BYTES,
    max_nodes: int = safe_yaml.MAX_NODES,
    max_depth: int = safe_yaml.MAX_DEPTH,
) -> Recipe:
    """A recipe from a YAML file or a shipped recipe name, with `key.path=value` overrides applied."""
    path = _recipe_path(source)
    data = safe_yaml.read_yaml(path, max_bytes=max_bytes, max_nodes=max_nodes, max_depth=max_depth)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a recipe is a YAML mapping (name:, stages:, ...), not a {type(data).__name__}")
    apply_overrides(data, overrides or [])
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_one_line(exc)}") from None


def _one_line(exc: ValidationError) -> str:
    problems = [f"{'.'.join(str(part) for part in error['loc']) or 'recipe'}: {error['msg']}" for error in exc.errors()]
    return "; ".join(problems)


def _recipe_path(source: str | Path) -> Path:
    path = Path(source)
    if path.is_file():
        return path
    shipped = RECIPES_DIR / f"{source}.yaml"
    if shipped.is_file():
        return shipped
    known = sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))
    raise ConfigError(f"no recipe file {source!r} and no shipped recipe of that name; shipped: {known}")


def substitute(value: Any, lookup: dict[str, str]) -> Any:
    """Replace `${...}` references in strings (recursively through lists and dicts)."""
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            key = match.group(1)
            if key not in lookup:
                raise ConfigError(f"unknown reference ${{{key}}}; known: {sorted(lookup)}")
            return lookup[key]

        return _REFERENCE.sub(replace, value)
    if isinstance(value, list):
        return [substitute(v, lookup) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, lookup) for k, v in value.items()}
    return value


def references(value: Any) -> list[str]:
    """The `${...}` keys a stage's options refer to, in order."""
    found: list[str] = []
    if isinstance(value, str):
        found += _REFERENCE.findall(value)
    elif isinstance(value, list):
        for item in value:
            found += references(item)
    elif isinstance(value, dict):
        for item in value.values():
            found += references(item)
    return found
