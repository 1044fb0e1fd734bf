"""`make test-min` pins every direct dependency it installs at its declared floor (.ci/floors.py)."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load_floors() -> object:
    spec = importlib.util.spec_from_file_location("floors", REPO / ".ci" / "floors.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_installed_direct_dependency_has_a_pinned_floor() -> None:
    floors = load_floors()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in floors.EXTRAS:  # type: ignore[attr-defined]
        requirements += project["optional-dependencies"][extra]
    names = {re.match(r"[A-Za-z0-9_.-]+", r)[0].lower() for r in requirements}  # type: ignore[index]
    pinned = floors.floors(REPO / "pyproject.toml")  # type: ignore[attr-defined]
    assert names - {project["name"]} == set(pinned), "a dependency without a >= floor escapes the minimum job"
    for requirement in requirements:
        name = re.match(r"[A-Za-z0-9_.-]+", requirement)[0].lower()  # type: ignore[index]
        if name != project["name"]:
            assert f">={pinned[name]}" in requirement.replace(" ", ""), requirement
