"""The atomic writer, side-file names and the input/output guard."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from longsift.errors import DataError, UsageError
from longsift.formats import write
from longsift.outputs import TEMP_PREFIX, atomic_output, guard_paths, remove_stale_temps, side_path, write_text
from longsift.records import Example


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


# --- write-time errors: one line naming the record and the field, nothing left at the output path ---

GOOD = Example.from_alpaca("instruction", "", "answer", id="a", row=0, source="src.json")
WRITERS = [("alpaca", ".json"), ("fastchat", ".json"), ("messages", ".jsonl"), ("parquet", ".parquet")]


def _bad(kind: str, where: str) -> Example:
    value = {"bytes": b"\x00\xff", "surrogate": "half \ud83d pair", "big": 1 << 70}[kind]
    if where == "content":
        return Example.from_alpaca("instruction", "", value, id="b", row=7, source="src.json")  # type: ignore[arg-type]
    return Example.from_alpaca("instruction", "", "answer", id="b", row=7, source="src.json").with_metadata(x=value)


CASES = [
    (fmt, ext, kind, where)
    for fmt, ext in WRITERS
    for kind, where in [("bytes", "metadata"), ("surrogate", "metadata"), ("surrogate", "content"), ("big", "metadata")]
    if not (fmt == "fastchat" and where == "metadata")  # FastChat files carry no metadata
    if not (kind == "big" and fmt in ("alpaca", "fastchat"))  # json.dump writes big integers exactly
]


@pytest.mark.parametrize(("fmt", "ext", "kind", "where"), CASES)
def test_an_unwritable_record_is_named_and_nothing_is_left(fmt: str, ext: str, kind: str, where: str, tmp_path: Path):
    out = tmp_path / f"out{ext}"
    write(([GOOD] * 3), out, fmt)
    previous = out.read_bytes()
    with pytest.raises(DataError) as raised:
        write([GOOD, GOOD, _bad(kind, where), GOOD], out, fmt)
    message = str(raised.value)
    assert message.startswith("src.json (row 7): cannot write this record to ") and "\n" not in message
    assert {"bytes": "holds bytes", "surrogate": "lone surrogate (\\ud83d)", "big": "beyond 64 bits"}[kind] in message
    fields = {"alpaca": ("x", "output"), "fastchat": ("", "conversations[1].value")}
    field = fields.get(fmt, ("metadata.x", "messages[1].content"))[where == "content"]
    assert f"field {field} holds " in message
    assert out.read_bytes() == previous  # the previous good output survives whole
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no temporary file left


@pytest.mark.parametrize(("fmt", "ext"), [("alpaca", ".json"), ("messages", ".jsonl")])
def test_nan_and_infinities_are_written_as_null_never_as_invalid_json(fmt: str, ext: str, tmp_path: Path):
    record = GOOD.with_metadata(score=float("nan"), hi=float("inf"), scores=[1.5, float("-inf")])
    out = tmp_path / f"out{ext}"
    write([record], out, fmt)
    text = out.read_text(encoding="utf-8")

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} written: not JSON")

    parsed = json.loads(text, parse_constant=refuse)
    item = parsed[0] if ext == ".json" else parsed["metadata"]
    assert (item["score"], item["hi"], item["scores"]) == (None, None, [1.5, None])


def test_the_paper_layout_is_still_json_dump_indent_4(tmp_path: Path):
    records = [GOOD, GOOD.with_metadata(note="é \U0001f600 \\ud800 literal")]
    out = tmp_path / "out.json"
    write(records, out, "alpaca")
    from longsift.formats.alpaca import to_alpaca

    assert out.read_text(encoding="utf-8") == json.dumps([to_alpaca(r) for r in records], indent=4)


def test_a_binary_parquet_column_is_a_clear_cli_error(cli, tmp_path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = tmp_path / "p.parquet"
    pq.write_table(pa.table({"instruction": ["a", "b"], "output": ["x", "y"], "blob": [b"ok", b"\x00\xff"]}), source)
    out = tmp_path / "out.jsonl"
    out.write_text("previous\n")
    for target in (out, tmp_path / "new.json", tmp_path / "new.parquet"):
        result = cli("convert", str(source), "-o", str(target), check=False, timeout=120)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {source} (row 0): cannot write this record"), lines
        assert "field" in lines[0] and "blob holds bytes" in lines[0]
    assert out.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl", "p.parquet"]


# --- temporary files of killed writers ---


def test_temporaries_of_dead_writers_are_removed_by_the_next_write(tmp_path: Path):
    out = tmp_path / "out.json"
    dead = _dead_pid()
    stale = tmp_path / f"{TEMP_PREFIX}out.json.{dead}.abc123"
    live = tmp_path / f"{TEMP_PREFIX}out.json.{os.getpid()}.def456"
    other = tmp_path / f"{TEMP_PREFIX}other.json.{dead}.abc123"
    longer = tmp_path / f"{TEMP_PREFIX}out.json.{dead}.{dead}.abc123"  # the temporary of `out.json.<dead>`
    probe = tmp_path / f"{TEMP_PREFIX}probe.{dead}.xyz"
    for path in (stale, live, other, longer, probe):
        path.write_text("half")
    assert sorted(remove_stale_temps(out)) == sorted([stale, probe])
    write_text(out, "whole\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, live.name, other.name, longer.name])


def _dead_pid() -> int:
    import subprocess

    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_a_partial_file_torn_by_a_kill_is_cut_to_its_whole_lines(tmp_path: Path):
    from longsift.generations import append_generation, read_partial
    from longsift.records import Generation

    partial = tmp_path / "g.jsonl.partial"
    first = Generation("p1", "vicuna", "m", ("q",), ("a",), {})
    append_generation(first, partial)
    with partial.open("ab") as handle:
        handle.write(b'{"prompt_id": "p2", "eval_')  # the kill landed mid-line
    assert read_partial(partial) == [first]
    second = Generation("p2", "vicuna", "m", ("q",), ("b",), {})
    append_generation(second, partial)
    assert read_partial(partial) == [first, second]
