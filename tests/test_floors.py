"""`make test-min` pins every direct dependency it installs at its declared floor (.ci/floors.py)."""

from __future__ import annotations

import ast
import importlib.metadata
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


DEV_TOOLS = {"mypy", "ruff", "pytest", "pytest-timeout", "pytest-xdist"}  # run by the job itself, not imported


def floor_tests() -> list[Path]:
    """The test files `make test-min` runs (its FLOOR_TESTS: files or node ids)."""
    makefile = (REPO / "Makefile").read_text().replace("\\\n", " ")
    words = re.search(r"^FLOOR_TESTS \?=(.*)$", makefile, re.M)[1].split()  # type: ignore[index]
    return sorted({REPO / word.split("::")[0] for word in words})


def imported(path: Path) -> set[str]:
    """Every module an import statement in `path` names, at any depth (lazy imports inside functions too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def libraries(modules: set[str]) -> set[str]:
    """The installed distributions whose top-level packages `modules` name (normalized: lm_eval is lm-eval)."""
    owners = importlib.metadata.packages_distributions()
    dists = {dist for module in modules for dist in owners.get(module.split(".")[0], [])}
    return {re.sub(r"[-_.]+", "-", dist).lower() for dist in dists}


def module_file(name: str) -> Path | None:
    base = REPO.joinpath(*name.split("."))
    return next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()), None)


def test_the_floors_job_reaches_every_pinned_library_longsift_imports() -> None:
    """A pinned library longsift imports is imported by a FLOOR_TESTS file or by a longsift module one imports."""
    pinned = set(load_floors().floors(REPO / "pyproject.toml")) - DEV_TOOLS  # type: ignore[attr-defined]
    used = libraries(set().union(*(imported(p) for p in (REPO / "longsift").rglob("*.py")))) & pinned
    reached: set[str] = set()
    for test in floor_tests():
        assert test.is_file(), f"FLOOR_TESTS names {test.name}, which does not exist"
        names = imported(test) | imported(REPO / "tests" / "conftest.py")
        ours = {module_file(n) for n in names if n.startswith("longsift")} - {None}
        reached |= libraries(names.union(*(imported(p) for p in ours if p)))
    assert used - reached == set(), "make test-min runs no test that reaches these pinned libraries"
    assert len(used) >= 15  # the check sees longsift's libraries at all
