"""Recipes: a pydantic model of a whole run. Precedence: defaults < YAML < command-line `--set key=value`.

Stage options may refer to earlier stages' outputs and to folders with `${...}`:
`${data}` (the shared data folder), `${run}` (the run folder), `${STAGE}` (that stage's main output) and
`${STAGE.KEY}` (another output it declared). Unknown keys anywhere are an error.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from longsift.errors import ConfigError

RECIPES_DIR = Path(__file__).resolve().parents[2] / "recipes"
_REFERENCE = re.compile(r"\$\{([A-Za-z0-9_.-]+)\}")


class StageSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    uses: str
    options: dict[str, Any] = Field(default_factory=dict, alias="with")


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    run_dir: str = "runs/${name}"
    data_dir: str = Field(default_factory=lambda: os.environ.get("LONGSIFT_DATA", "../shared/data"))
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


def load_recipe(source: str | Path, overrides: list[str] | None = None) -> Recipe:
    """A recipe from a YAML file or a shipped recipe name, with `key.path=value` overrides applied."""
    path = _recipe_path(source)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    for override in overrides or []:
        _apply_override(data, override)
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def _recipe_path(source: str | Path) -> Path:
    path = Path(source)
    if path.is_file():
        return path
    shipped = RECIPES_DIR / f"{source}.yaml"
    if shipped.is_file():
        return shipped
    known = sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))
    raise ConfigError(f"no recipe file {source!r} and no shipped recipe of that name; shipped: {known}")


def _apply_override(data: dict[str, Any], override: str) -> None:
    """`stages.train.with.epochs=2` addresses a stage by name; values are parsed as YAML scalars."""
    key, sep, raw = override.partition("=")
    if not sep:
        raise ConfigError(f"override {override!r} must look like key.path=value")
    parts = key.split(".")
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            matches = [item for item in node if isinstance(item, dict) and item.get("name") == part]
            if not matches:
                raise ConfigError(f"override {override!r}: no stage named {part!r}")
            node = matches[0]
            continue
        if part not in node and not (i == 0 and part == "stages"):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = yaml.safe_load(raw)


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
