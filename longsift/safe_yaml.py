"""YAML from users (run recipes, train recipes), read with a bounded `yaml.SafeLoader`.

A file over `MAX_BYTES`, nesting deeper than `MAX_DEPTH`, or anchors and aliases that expand past `MAX_NODES`
nodes (a "billion laughs" alias bomb is a few hundred bytes and billions of nodes) are refused before anything is
built from them: the size is measured on the composed graph, where aliases are shared, in linear time. A key
given twice is an error instead of a silent last-one-wins. Every failure is a `ConfigError` naming the limit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from longsift.errors import ConfigError

MAX_BYTES = 1 << 20  # a recipe is a page of YAML; the shipped ones are under 3 KB
MAX_NODES = 20_000  # after expanding aliases; the largest shipped recipe has about 100
MAX_DEPTH = 64


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that measures each document as composed (aliases shared) before constructing anything."""

    max_nodes = MAX_NODES
    max_depth = MAX_DEPTH

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


def parse_yaml(text: str, *, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> Any:
    """One YAML document through the bounded SafeLoader (a YAMLError for what is not YAML)."""
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


def read_yaml(path: Path, *, max_bytes: int = MAX_BYTES, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> Any:
    """The one YAML document in `path`; errors start with the path."""
    text = _read_text(path, max_bytes)
    try:
        return parse_yaml(text, max_nodes=max_nodes, max_depth=max_depth)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {' '.join(str(exc).split())}") from None


def _read_text(path: Path, max_bytes: int) -> str:
    try:
        with path.open("rb") as handle:
            raw = handle.read(max_bytes + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror})") from None
    if len(raw) > max_bytes:
        raise ConfigError(f"{path}: larger than {max_bytes} bytes (the limit for this file)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
