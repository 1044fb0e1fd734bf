"""Print `name==floor` for every direct dependency that `make test-min` installs (core and the dev extras).

The floors come from pyproject.toml's `>=` bounds, so the minimum-versions job tests exactly what is declared.
"""

import re
import sys
import tomllib
from pathlib import Path

EXTRAS = ("train", "hf", "openllm", "dev")  # what `.[dev]` pulls in; vllm/alpacaeval/qlora/bench are not installed
FLOOR = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*(?:\[[^\]]*\])?\s*>=\s*([0-9][^,;\s]*)")


def floors(pyproject: Path) -> dict[str, str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in EXTRAS:
        requirements += project["optional-dependencies"][extra]
    pinned: dict[str, str] = {}
    for requirement in requirements:
        match = FLOOR.match(requirement)
        if match and match[1].lower() != project["name"]:
            pinned[match[1].lower()] = match[2]
    return pinned


if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    for name, version in sorted(floors(root / "pyproject.toml").items()):
        print(f"{name}=={version}")
