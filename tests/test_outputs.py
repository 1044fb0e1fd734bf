"""The atomic writer, side-file names and the input/output guard."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from longsift.errors import UsageError
from longsift.outputs import TEMP_PREFIX, atomic_output, guard_paths, side_path, write_text


@pytest.mark.parametrize(
    ("output", "side"),
    [
        ("x.json", "x.quarantine.jsonl"),
        ("x.v1.json", "x.v1.quarantine.jsonl"),
        ("x.v2.jsonl.gz", "x.v2.quarantine.jsonl"),
        ("noext", "noext.quarantine.jsonl"),
        (".hidden", ".hidden.quarantine.jsonl"),
    ],
)
def test_side_path_keeps_the_whole_name(output: str, side: str) -> None:
    assert side_path(Path("d") / output, "quarantine.jsonl") == Path("d") / side


def test_a_failed_write_leaves_the_previous_output(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    write_text(out, "good\n")
    with pytest.raises(RuntimeError), atomic_output(out) as handle:
        handle.write(b"half")
        raise RuntimeError("killed")
    assert out.read_text() == "good\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_complete_write_replaces_and_has_plain_mode(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "out.txt"
    with atomic_output(out, "w") as handle:
        handle.write("é\n")
        assert not out.exists()
        assert any(p.name.startswith(TEMP_PREFIX) for p in out.parent.iterdir())
    assert out.read_text(encoding="utf-8") == "é\n"
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


def test_guard_refuses_an_output_that_is_an_input(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text("{}\n")
    (tmp_path / "sub").mkdir()
    link = tmp_path / "link.jsonl"
    link.symlink_to(data)
    for spelled in (data, tmp_path / "sub" / ".." / "d.jsonl", link):
        with pytest.raises(UsageError, match="is the input"):
            guard_paths([data], [spelled])
    hard = tmp_path / "hard.jsonl"
    os.link(data, hard)
    with pytest.raises(UsageError, match="is the input"):
        guard_paths([data], [hard])
    guard_paths([data], [tmp_path / "other.jsonl"])


def test_guard_refuses_two_outputs_on_one_file_and_folders(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="two outputs"):
        guard_paths([], [tmp_path / "a.json", tmp_path / "." / "a.json"])
    with pytest.raises(UsageError, match="is a folder"):
        guard_paths([], [tmp_path])


def test_guard_refuses_an_output_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    with pytest.raises(UsageError, match="not a folder"):
        guard_paths([], [tmp_path / "afile" / "out.json"])
