"""The README's commands stay true: set-up commands exist, and every documented flag exists."""

from __future__ import annotations

import re
import shlex

from tests.conftest import REPO

README = (REPO / "README.md").read_text()
GROUPS = {"judge", "alpacaeval", "llm"}  # commands whose next word is a sub-command


def test_the_two_setup_commands_are_what_ci_runs() -> None:
    assert "make demo" in README and "make test" in README
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^demo: install$", makefile, re.M) and re.search(r"^test: install$", makefile, re.M)
    ci = (REPO / ".ci" / "run").read_text()
    steps = [line for line in ci.strip().splitlines() if line.startswith("make ")]
    assert steps == ["make test", "make test-ray", "make test-min"]  # README tests, the Ray extra, then the floors


def documented_commands() -> list[list[str]]:
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("#")[0].split("&&")[0].strip()
            words = shlex.split(line) if line else []
            if "longsift" in words:  # also `accelerate launch ... -m longsift train ...`
                commands.append(words[words.index("longsift") + 1 :])
    return commands


def test_every_documented_flag_exists(cli) -> None:
    commands = documented_commands()
    assert len(commands) >= 15
    helps: dict[tuple[str, ...], str] = {}
    for words in commands:
        name = tuple(words[:2]) if words[0] in GROUPS else tuple(words[:1])
        if name not in helps:
            helps[name] = cli(*name, "--help", env={"COLUMNS": "250"}).stdout
        for flag in (w.split("=")[0] for w in words if w.startswith("--")):
            assert flag in helps[name], f"README uses `longsift {' '.join(name)} {flag}`, which does not exist"
