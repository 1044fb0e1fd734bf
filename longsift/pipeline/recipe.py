"""Recipes: a pydantic model of a whole run. Precedence: defaults < YAML < command-line `--set key=value`.

Stage options may refer to earlier stages' outputs and to folders with `${...}`:
`${data}` (the shared data folder), `${run}` (the run folder), `${STAGE}` (that stage's main output) and
`${STAGE.KEY}` (another output it declared). Unknown keys anywhere are an error.

Recipes are read with a bounded `yaml.SafeLoader`: a file over `MAX_RECIPE_BYTES`, nesting deeper than
`MAX_YAML_DEPTH` or anchors and aliases that expand past `MAX_YAML_NODES` nodes (a "billion laughs" alias bomb
is a few hundred bytes) are refused before anything is built from them; `load_recipe` takes other limits.
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
BUILTIN_REFERENCES = ("data", "run", "name", "seed")
MAX_RECIPE_BYTES = 1 << 20  # a recipe is a page of YAML; the shipped ones are under 3 KB
MAX_YAML_NODES = 20_000  # after expanding aliases; the largest shipped recipe has about 100
MAX_YAML_DEPTH = 64


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that measures each document as composed (aliases shared) before constructing anything."""

    max_nodes = MAX_YAML_NODES
    max_depth = MAX_YAML_DEPTH

    def compose_document(self) -> yaml.Node | None:
        node = super().compose_document()
        if node is not None:
            _Expansion(self.max_nodes, self.max_depth).size(node, 1)
        return node

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """A key given twice is an error, not a silent last-one-wins (merge keys `<<` may still be overridden)."""
        seen: set[str] = set()
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                if key.value in seen:
                    raise ConfigError(f"line {key.start_mark.line + 1}: key {key.value!r} is given twice")
                seen.add(key.value)
        return super().construct_mapping(node, deep)


class _Expansion:
    """Nodes in a composed document with every alias expanded, memoised on the shared nodes: linear time."""

    def __init__(self, max_nodes: int, max_depth: int) -> None:
        self.max_nodes, self.max_depth = max_nodes, max_depth
        self.sizes: dict[int, int] = {}
        self.open: set[int] = set()

    def size(self, node: yaml.Node, depth: int) -> int:
        if id(node) in self.sizes:
            return self.sizes[id(node)]
        if id(node) in self.open:
            raise ConfigError("a YAML alias refers to the node that contains it (a recursive structure); remove it")
        if depth > self.max_depth:
            raise ConfigError(f"YAML nested deeper than {self.max_depth} levels (the limit); flatten the recipe")
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        self.open.add(id(node))
        total = 1
        for child in children:
            total += self.size(child, depth + 1)
            if total > self.max_nodes:
                raise ConfigError(
                    f"YAML expands to more than {self.max_nodes} nodes (the limit; an alias counts as often as it "
                    "is used: an alias bomb?); write the recipe out without anchors and aliases"
                )
        self.open.discard(id(node))
        self.sizes[id(node)] = total
        return total


def parse_yaml(text: str, *, max_nodes: int = MAX_YAML_NODES, max_depth: int = MAX_YAML_DEPTH) -> Any:
    """One YAML document through the bounded SafeLoader."""
    loader_class = type("Loader", (_BoundedLoader,), {"max_nodes": max_nodes, "max_depth": max_depth})
    loader = loader_class(text)
    try:
        return loader.get_single_data()
    except RecursionError:
        raise ConfigError(f"YAML nested too deeply to read (limit {max_depth} levels); flatten the recipe") from None
    except ValueError as exc:  # what a constructor raises on a value it cannot build (a 5,000-digit integer)
        raise ConfigError(f"invalid YAML value: {exc}") from None
    finally:
        loader.dispose()


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


def load_recipe(
    source: str | Path,
    overrides: list[str] | None = None,
    *,
    max_bytes: int = MAX_RECIPE_BYTES,
    max_nodes: int = MAX_YAML_NODES,
    max_depth: int = MAX_YAML_DEPTH,
) -> Recipe:
    """A recipe from a YAML file or a shipped recipe name, with `key.path=value` overrides applied."""
    path = _recipe_path(source)
    text = _read_recipe(path, max_bytes)
    try:
        data = parse_yaml(text, max_nodes=max_nodes, max_depth=max_depth)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {' '.join(str(exc).split())}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a recipe is a YAML mapping (name:, stages:, ...), not a {type(data).__name__}")
    for override in overrides or []:
        _apply_override(data, override)
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_one_line(exc)}") from None


def _read_recipe(path: Path, max_bytes: int) -> str:
    try:
        with path.open("rb") as handle:
            raw = handle.read(max_bytes + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the recipe ({exc.strerror})") from None
    if len(raw) > max_bytes:
        raise ConfigError(f"{path}: larger than {max_bytes} bytes (the limit for a recipe file); is it a recipe?")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); save the recipe as UTF-8") from None


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


def _apply_override(data: dict[str, Any], override: str) -> None:
    """`stages.train.with.epochs=2` addresses a stage by name; values are parsed as YAML scalars."""
    key, sep, raw = override.partition("=")
    if not sep:
        raise ConfigError(f"override {override!r} must look like key.path=value")
    parts = key.split(".")
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        if not isinstance(node, dict | list):
            raise ConfigError(f"override {override!r}: {'.'.join(parts[:i])} is a value, not a mapping")
        if isinstance(node, list):
            matches = [item for item in node if isinstance(item, dict) and item.get("name") == part]
            if not matches:
                raise ConfigError(f"override {override!r}: no stage named {part!r}")
            node = matches[0]
            continue
        if part not in node and not (i == 0 and part == "stages"):
            node[part] = {}
        node = node[part]
    if not isinstance(node, dict):
        raise ConfigError(f"override {override!r}: {'.'.join(parts[:-1]) or 'the recipe'} is not a mapping")
    node[parts[-1]] = parse_yaml(raw)


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
