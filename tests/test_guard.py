"""No command writes on top of its input: every writing command, every spelling of the same file, side files too.

The guard runs before any work, in-process here (fast); a few cases run as a real subprocess for the exit code and
the one-line message. Every case checks that the input's bytes are unchanged and that nothing was written.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from longsift.cli import build
from longsift.errors import UsageError
from longsift.outputs import TEMP_PREFIX

LLM = ["--model", "m", "--base-url", "http://127.0.0.1:9/v1", "--no-progress"]
CONTENT = b'{"instruction": "a", "output": "b"}\n'


@dataclass(frozen=True)
class Command:
    """How a command is called with an input file and an output argument, and what it would write there."""

    name: str
    argv: Callable[[Path, Path, Path], list[str]]  # (input, output argument, a folder with helper files)
    side: str | None = None  # a side file's suffix (side_path), "+partial" for `OUTPUT.partial`
    output_is_folder: str | None = None  # the file written in the output folder

    def side_of(self, output: Path) -> Path:
        assert self.side is not None
        if self.side.startswith("+"):
            return Path(f"{output}.{self.side[1:]}")
        from longsift.outputs import side_path

        return side_path(output, self.side)


FILE_COMMANDS = [
    Command("convert", lambda i, o, h: ["convert", str(i), "-o", str(o)], "quarantine.jsonl"),
    Command("select", lambda i, o, h: ["select", str(i), "-o", str(o), "--k", "1", "-q"], "manifest.json"),
    Command("select-quarantine", lambda i, o, h: ["select", str(i), "-o", str(o), "--k", "1"], "quarantine.jsonl"),
    Command("refine", lambda i, o, h: ["refine", str(i), "-o", str(o), *LLM], "failures.jsonl"),
    Command("score", lambda i, o, h: ["score", str(i), "-o", str(o), *LLM], "quarantine.jsonl"),
    Command("alpacaeval export", lambda i, o, h: ["alpacaeval", "export", str(i), "-o", str(o)]),
    Command("llm cache export", lambda i, o, h: ["llm", "cache", "export", "--cache", str(i), "-o", str(o)]),
    Command("generate", lambda i, o, h: ["generate", str(h / "model"), str(i), "-o", str(o)], "+partial"),
]
FOLDER_COMMANDS = [
    Command("stats", lambda i, o, h: ["stats", str(i), "-o", str(o)], output_is_folder="stats.json"),
    Command(
        "judge pairwise",
        lambda i, o, h: ["judge", "pairwise", str(i), str(h / "b.jsonl"), "-o", str(o), *LLM],
        output_is_folder="summary.json",
    ),  # fmt: skip
    Command(
        "judge mtbench",
        lambda i, o, h: ["judge", "mtbench", str(i), "-o", str(o), *LLM],
        output_is_folder="scores.json",
    ),  # fmt: skip
    Command(
        "alpacaeval run", lambda i, o, h: ["alpacaeval", "run", str(i), "-o", str(o)], output_is_folder="score.json"
    ),
]
SPELLINGS = ["same", "dotdot", "symlink", "hardlink", "side"]


@pytest.fixture(scope="module")
def app():
    return build()


@pytest.fixture
def helpers(tmp_path: Path) -> Path:
    folder = tmp_path / "helpers"
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "config.json").write_text("{}")
    (folder / "b.jsonl").write_bytes(CONTENT)
    return folder


def spelled(tmp_path: Path, target: Path, spelling: str) -> Path:
    """`target` (an input, or the folder holding it) named another way."""
    (tmp_path / "sub").mkdir(exist_ok=True)
    if spelling == "same":
        return target
    if spelling == "dotdot":
        return Path(str(tmp_path / "sub") + "/../" + str(target.relative_to(tmp_path)))
    link = tmp_path / f"link-{target.name}"
    link.symlink_to(target)
    return link


def refused(app, argv: list[str], inputs: list[Path], tmp_path: Path, before: set[Path]) -> None:
    contents = {p: p.read_bytes() for p in inputs}
    result = CliRunner().invoke(app, argv)
    assert isinstance(result.exception, UsageError), (argv, result.output, result.exception)
    assert "is the input" in str(result.exception)
    for path, data in contents.items():
        assert path.read_bytes() == data
    after = {p for p in tmp_path.rglob("*")}
    assert after == before, after - before  # nothing written: no output, no side file, no temporary file


@pytest.mark.parametrize(
    ("command", "spelling"),
    [(c, s) for c in FILE_COMMANDS for s in SPELLINGS if s != "side" or c.side is not None],
    ids=lambda value: value.name if isinstance(value, Command) else value,
)
def test_file_outputs_that_are_the_input_are_refused(app, command: Command, spelling: str, tmp_path: Path, helpers):
    data = tmp_path / "d.jsonl"
    if spelling == "side":
        output = tmp_path / "x.jsonl"
        data = command.side_of(output)
    data.write_bytes(CONTENT)
    if spelling == "hardlink":
        output = tmp_path / "hard.jsonl"
        os.link(data, output)
    elif spelling != "side":
        output = spelled(tmp_path, data, spelling)
    before = set(tmp_path.rglob("*"))
    refused(app, command.argv(data, output, helpers), [data], tmp_path, before)


@pytest.mark.parametrize("spelling", ["same", "dotdot", "symlink", "hardlink"])
@pytest.mark.parametrize("command", FOLDER_COMMANDS, ids=lambda c: c.name)
def test_folder_outputs_holding_the_input_are_refused(app, command: Command, spelling: str, tmp_path: Path, helpers):
    assert command.output_is_folder is not None
    folder = tmp_path / "out"
    folder.mkdir()
    data = folder / command.output_is_folder
    if spelling == "hardlink":
        data = tmp_path / "d.jsonl"
        data.write_bytes(CONTENT)
        os.link(data, folder / command.output_is_folder)
        output = folder
    else:
        data.write_bytes(CONTENT)
        output = spelled(tmp_path, folder, spelling)
    before = set(tmp_path.rglob("*"))
    refused(app, command.argv(data, output, helpers), [data], tmp_path, before)


def test_the_cache_and_the_model_are_inputs_too(app, tmp_path: Path, helpers):
    data = tmp_path / "d.jsonl"
    data.write_bytes(CONTENT)
    before = set(tmp_path.rglob("*"))
    refine = ["refine", str(data), "-o", str(tmp_path / "out.jsonl"), *LLM, "--cache", str(data)]
    refused(app, refine, [data], tmp_path, before)
    config = helpers / "model" / "config.json"
    refused(app, ["generate", str(helpers / "model"), "pairwise", "-o", str(config)], [config], tmp_path, before)


def test_two_outputs_of_one_command_may_not_be_one_file(app, tmp_path: Path, helpers):
    data = tmp_path / "d.jsonl"
    data.write_bytes(CONTENT)
    out = tmp_path / "g.jsonl"
    result = CliRunner().invoke(app, ["generate", str(helpers / "model"), str(data), "-o", str(out),
                                      "--alpacaeval", str(out)])  # fmt: skip
    assert isinstance(result.exception, UsageError) and "two outputs" in str(result.exception)


def test_side_files_of_two_versions_do_not_collide(cli, tmp_path: Path):
    """x.v1.json and x.v2.json get their own manifest and quarantine (not one `x.*` pair), replaced per run."""
    data = tmp_path / "d.jsonl"
    data.write_bytes(CONTENT + b'{"instruction": "", "output": "b"}\n' + CONTENT.replace(b'"b"', b'"longer"'))
    cli("select", str(data), "-o", str(tmp_path / "x.v1.json"), "--k", "1", "-q")
    cli("select", str(data), "-o", str(tmp_path / "x.v2.json"), "--k", "2", "-q")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["d.jsonl", "x.v1.json", "x.v1.manifest.json", "x.v1.quarantine.jsonl", "x.v2.json",
                     "x.v2.manifest.json", "x.v2.quarantine.jsonl"]  # fmt: skip
    import orjson

    assert orjson.loads((tmp_path / "x.v1.manifest.json").read_bytes())["outputs"]["output"].endswith("x.v1.json")
    assert orjson.loads((tmp_path / "x.v2.manifest.json").read_bytes())["summary"]["selected"] == 2
    data.write_bytes(CONTENT)  # a clean rerun: the earlier quarantine would describe other data
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f"{TEMP_PREFIX}x.v1.quarantine.jsonl.{dead.pid}.abc123"  # left by a killed run
    stale.write_text("half")
    cli("select", str(data), "-o", str(tmp_path / "x.v1.json"), "--k", "1", "-q")
    assert not (tmp_path / "x.v1.quarantine.jsonl").exists() and (tmp_path / "x.v2.quarantine.jsonl").exists()
    assert not stale.exists()


def test_a_quarantine_named_input_is_refused_by_a_real_process(cli, tmp_path: Path):
    """The case that once looped to 100 MB: converting x.quarantine.jsonl to x.jsonl."""
    data = tmp_path / "x.quarantine.jsonl"
    data.write_bytes(CONTENT + b"not json\n")
    for output in (tmp_path / "x.jsonl", tmp_path / "x.quarantine.jsonl", tmp_path / "sub" / ".." / data.name):
        result = cli("convert", str(data), "-o", str(output), check=False, timeout=60)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "is the input" in lines[0], result.stderr
        assert data.read_bytes() == CONTENT + b"not json\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.quarantine.jsonl"]


def test_an_unwritable_output_is_found_before_the_input_is_read(cli, tmp_path: Path):
    """The input is not even a corpus: had the scan run first, its error would be the one printed."""
    data = tmp_path / "d.jsonl"
    data.write_bytes(b"\x00 not a corpus")
    (tmp_path / "afile").write_text("x")
    result = cli("select", str(data), "-o", str(tmp_path / "afile" / "out.json"), check=False, timeout=60)
    assert result.returncode == 2 and "afile is not a folder" in result.stderr, result.stderr
    if os.geteuid() != 0:  # root writes into read-only folders
        folder = tmp_path / "ro"
        folder.mkdir(mode=0o555)
        result = cli("convert", str(data), "-o", str(folder / "out.jsonl"), check=False, timeout=60)
        assert result.returncode == 2 and "cannot write in" in result.stderr, result.stderr
    assert not any(p.name.startswith(TEMP_PREFIX) for p in tmp_path.rglob("*"))
