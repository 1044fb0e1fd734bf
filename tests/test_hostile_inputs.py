"""Hostile inputs through the real CLI: every row kept or quarantined (file:line, reason) or one clear error.

Each file of tests/data/hostile/ (see its README) goes through `select`, `convert` and `stats` in a subprocess;
size bombs, folders, datasets and files that change while read are made here, in tmp_path. Every case checks
the exact outcome, the exit code, and that the input is byte-identical afterwards.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from longsift.errors import DataError, LongsiftError
from longsift.formats.load import Quarantine, RecordStream, load_all
from longsift.select import select

HOSTILE = Path(__file__).parent / "data" / "hostile"
REPO = Path(__file__).resolve().parents[1]
SUMMARY = re.compile(r"rows read (\d+) = kept (\d+) \+ quarantined (\d+)")


@dataclass(frozen=True)
class Ok:
    """Read to the end: rows read = kept + quarantined; the first rejection's reason phrase and line."""

    read: int
    kept: int
    quarantined: int
    reason: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class Err:
    """Refused whole: one line `error: FILE[:LINE]...PHRASE`, exit 2, nothing written."""

    phrase: str
    line: int | None = None


CASES: dict[str, Ok | Err] = {
    # encodings
    "bom.jsonl": Ok(3, 3, 0),
    "bom.json": Ok(3, 3, 0),
    "bom_mid_file.jsonl": Ok(3, 2, 1, "byte order mark", 2),
    "utf16le.jsonl": Err("looks like UTF-16 or UTF-32 text; longsift reads UTF-8"),
    "utf16be.json": Err("looks like UTF-16 or UTF-32 text; longsift reads UTF-8"),
    "latin1_line.jsonl": Ok(4, 3, 1, "invalid UTF-8 at byte 20", 2),
    "invalid_utf8_element.json": Ok(3, 2, 1, "invalid UTF-8 at byte 21", 3),
    "lone_surrogate.jsonl": Ok(4, 3, 1, "a lone surrogate escape", 3),
    "lone_surrogate.json": Ok(3, 2, 1, "a lone surrogate escape", 1),
    "crlf.jsonl": Ok(3, 3, 0),
    "crlf.json": Ok(3, 3, 0),
    "nul_byte.jsonl": Ok(4, 3, 1, "invalid JSON: unexpected control character", 2),
    "raw_control_char.jsonl": Ok(4, 3, 1, "invalid JSON: unexpected control character", 2),
    # containers
    "empty.jsonl": Err("the file is empty: there are no records to read"),
    "empty.json": Err("the file is empty: there are no records to read"),
    "whitespace_only.jsonl": Err("the file holds only whitespace"),
    "scalar_top.json": Err("holds a single JSON value, not records"),
    "string_top.json": Err("holds a single JSON value, not records"),
    "null_top.json": Err("holds a single JSON value, not records"),
    "object_spread_over_lines.json": Err("holds one JSON object spread over several lines"),
    "two_arrays.json": Err("column 1: another JSON array after the end of the JSON array", 18),
    "data_after_array.json": Err("column 1: data after the end of the JSON array", 18),
    "trailing_comma.json": Err("column 1: invalid JSON: an empty element", 2),
    "double_comma.json": Err("column 61: invalid JSON: an empty element", 1),
    "missing_comma.json": Err("column 2 (in the element that starts on line 1): invalid JSON", 2),
    "syntax_error_early.json": Err("column 9 (in the element that starts on line 12): invalid JSON", 14),
    "extra_close_brace.json": Err("column 33: invalid JSON: '}' without its '{'", 28),
    "unclosed_array.json": Err("the JSON array is not closed (file truncated?)", 3),
    "array_of_scalars.json": Ok(5, 0, 5, "expected a JSON object, got int", 1),
    "nested_array.json": Ok(1, 0, 1, "expected a JSON object, got list", 1),
    "empty_array.json": Ok(0, 0, 0),
    "truncated_mid_element.json": Ok(3, 2, 1, "the file ends inside this element (truncated?)", 12),
    "unterminated_string.json": Ok(1, 0, 1, "the file ends inside this element (truncated?)", 1),
    "fake.parquet": Err("is not a readable Parquet file"),
    "truncated.parquet": Err("is not a readable Parquet file"),
    "truncated.jsonl.gz": Err("the gzip stream is truncated"),
    "not_really_gzip.jsonl.gz": Err("is not a valid gzip file"),
    "gzip_trailing_garbage.jsonl.gz": Err("is not a valid gzip file, or has bytes after its gzip data"),
    # JSON edge cases
    "nan.jsonl": Ok(4, 3, 1, "NaN is not a JSON value", 2),
    "nan_in_array.json": Ok(2, 1, 1, "NaN is not a JSON value", 1),
    "infinity.json": Ok(3, 2, 1, "-Infinity is not a JSON value", 1),
    "huge_number.jsonl": Ok(4, 3, 1, "not strict JSON", 2),
    "huge_integer.jsonl": Ok(4, 3, 1, "not strict JSON", 2),
    "duplicate_keys.jsonl": Ok(2, 2, 0),
    "escaped_keys.jsonl": Ok(2, 2, 0),
    "deep_nesting.jsonl": Ok(4, 3, 1, "nested deeper than 100 levels (--max-depth)", 2),
    "deep_nesting.json": Ok(2, 1, 1, "nested deeper than 100 levels (--max-depth)", 1),
    "deep_3000.jsonl": Ok(4, 3, 1, "nested deeper than 100 levels (--max-depth)", 2),
    "not_objects.jsonl": Ok(5, 1, 4, "expected a JSON object, got list", 1),
    "wrong_types.json": Ok(3, 1, 2, "field 'instruction' must be a string, got int", 1),
    "unknown_layout.jsonl": Ok(4, 3, 1, "unknown record layout with fields ['answer', 'question']", 1),
    # truncations and line ends
    "blank_lines_between.jsonl": Ok(3, 3, 0),
    "no_final_newline.jsonl": Ok(3, 3, 0),
    "truncated_last_line.jsonl": Ok(4, 3, 1, "invalid JSON: unexpected end of data", 4),
}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "folder"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "longsift", *args], capture_output=True, text=True, env=full_env,
                          timeout=300)  # fmt: skip


def command(name: str, source: Path, out: Path, *extra: str) -> tuple[list[str], Path]:
    if name == "select":
        target = out / "sel.jsonl"
        return ["select", str(source), "-o", str(target), "--k", "2", "--quiet", *extra], target
    if name == "convert":
        target = out / "conv.jsonl"
        return ["convert", str(source), "-o", str(target), *extra], target
    return ["stats", str(source), "--json", *extra], out / "stats.json"


def counts(result: subprocess.CompletedProcess[str]) -> tuple[int, int, int]:
    """The summary line's counts (`stats --json`: its JSON's)."""
    found = SUMMARY.findall(result.stderr + result.stdout)
    if not found and result.stdout.startswith("{"):
        data = json.loads(result.stdout.splitlines()[0])
        return data["rows_read"], data["rows_kept"], data["rows_quarantined"]
    assert len(found) == 1, result.stderr
    return tuple(int(n) for n in found[0])  # type: ignore[return-value]


def quarantined(result: subprocess.CompletedProcess[str]) -> list[dict]:
    """The quarantine file named in the summary line ('see PATH')."""
    named = re.search(r"\(see (\S+)\)", result.stderr)
    assert named, result.stderr
    return [orjson.loads(line) for line in Path(named[1]).read_bytes().splitlines()]


def assert_one_line_error(result: subprocess.CompletedProcess[str], source: Path, expected: Err) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    where = f"error: {source}" + (f":{expected.line}:" if expected.line is not None else ":")
    assert errors[0].startswith(where), errors[0]
    assert expected.phrase in errors[0]


def test_the_corpus_is_the_table() -> None:
    names = sorted(p.name for p in HOSTILE.iterdir() if p.name != "README.md")
    assert names == sorted(CASES) and len(names) >= 40


# `stats` reads through the same scanner as `select`: by default it runs on one file of each kind, all under -m slow
STATS_DEFAULT = {"bom.jsonl", "lone_surrogate.json", "two_arrays.json", "truncated.jsonl.gz", "nan_in_array.json",
                 "empty.jsonl", "deep_nesting.jsonl", "truncated_mid_element.json", "fake.parquet"}  # fmt: skip
COMMANDS = [
    *[pytest.param(case, name, id=f"{case}-{name}") for case in sorted(CASES) for name in ("select", "convert")],
    *[pytest.param(case, "stats", id=f"{case}-stats", marks=() if case in STATS_DEFAULT else pytest.mark.slow)
      for case in sorted(CASES)],
]  # fmt: skip


@pytest.mark.parametrize(("case", "name"), COMMANDS)
def test_hostile_file_through_the_cli(case: str, name: str, tmp_path: Path) -> None:
    source = HOSTILE / case
    before = digest(source)
    expected = CASES[case]
    nothing_kept = not isinstance(expected, Err) and expected.kept == 0  # empty is an error unless allowed
    args, output = command(name, source, tmp_path / "out", *(["--allow-empty"] if nothing_kept else []))
    result = run(*args)
    assert digest(source) == before  # the input is never touched
    if isinstance(expected, Err):
        assert_one_line_error(result, source, expected)
        if name == "select":  # convert streams: its writer's atomic rename keeps a partial file off the path
            assert not output.exists()
        return
    assert result.returncode == 0, result.stderr
    assert counts(result) == (expected.read, expected.kept, expected.quarantined)
    assert expected.read == expected.kept + expected.quarantined
    if expected.quarantined and name != "stats":
        rejected = quarantined(result)
        assert len(rejected) == expected.quarantined
        assert expected.reason in rejected[0]["reason"] and rejected[0]["line"] == expected.line
        assert all(r["source"] == str(source) and r["line"] >= 1 and r["reason"] for r in rejected)
    if name == "stats":
        data = json.loads(result.stdout)
        assert (data["rows_read"], data["rows_kept"], data["rows_quarantined"]) == counts(result)
        assert data["units"]["chars"]["corpus"]["n"] == expected.kept
    else:
        lines = output.read_bytes().splitlines()
        assert len(lines) == min(expected.kept, 2 if name == "select" else expected.kept)


def expected_rows(case: str, tmp_path: Path) -> tuple[list, bytes] | str:
    """The exact load path (RecordStream): its k=2 longest selection and quarantine file, or its error."""
    quarantine = tmp_path / "exact.quarantine.jsonl"
    try:
        chosen = select(RecordStream(HOSTILE / case, quarantine=Quarantine(quarantine)), k=2, by="chars")
    except LongsiftError as exc:
        return str(exc)
    return chosen.examples, quarantine.read_bytes() if quarantine.exists() else b""


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("case", sorted(CASES))
def test_hot_path_and_exact_path_agree(case: str, workers: int, tmp_path: Path) -> None:
    exact = expected_rows(case, tmp_path)
    quarantine = tmp_path / "hot.quarantine.jsonl"
    try:
        chosen = select(HOSTILE / case, k=2, by="chars", workers=workers, quarantine=quarantine)
    except LongsiftError as exc:
        assert str(exc) == exact
        return
    assert not isinstance(exact, str), exact
    examples, rejected = exact
    assert chosen.examples == examples
    assert (quarantine.read_bytes() if quarantine.exists() else b"") == rejected


# ------------------------------------------------------------------------------- size bombs and limits


def peak_rss_mib(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run the CLI from a fresh parent that reports the peak RSS of it and its workers."""
    probe = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True, text=True);"
             "sys.stdout.write(r.stdout + '\\n' + str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) + '\\n');"
             "sys.stderr.write(r.stderr); sys.exit(r.returncode)")  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", probe, sys.executable, "-m", "longsift", *args],
                            capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    return result, int(result.stdout.split()[-1]) / 1024


def records(n: int) -> bytes:
    return b"".join(orjson.dumps({"instruction": f"q{i}", "output": "a" * (i + 1)}) + b"\n" for i in range(n))


@pytest.fixture(scope="module")
def baseline_rss(tmp_path_factory: pytest.TempPathFactory) -> float:
    path = tmp_path_factory.mktemp("base") / "small.jsonl"
    path.write_bytes(records(3))
    _, rss = peak_rss_mib("select", str(path), "-o", str(path.with_suffix(".out.jsonl")), "--k", "1", "-q")
    return rss


def test_gzip_bomb_without_newline_is_refused_by_its_ratio(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.jsonl.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as handle:
        for _ in range(160):
            handle.write(b"a" * (1 << 20))
    for name in ("select", "convert", "stats"):
        args, output = command(name, bomb, tmp_path / name)
        result, _ = peak_rss_mib(*args)
        assert_one_line_error(result, bomb, Err("the gzip stream expands over 200x"))
        assert "--max-gzip-ratio 0" in result.stderr


def test_oversized_lines_stream_past_in_flat_memory(tmp_path: Path, baseline_rss: float) -> None:
    """A 160 MiB line (a gzip of it with the ratio lifted, and plain): quarantined, memory stays flat."""
    line = b'{"instruction": "big", "output": "' + b"x" * (160 << 20) + b'"}\n'
    plain = tmp_path / "long.jsonl"
    plain.write_bytes(records(2) + line + records(1))
    packed = tmp_path / "long.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes(), compresslevel=1))
    for source in (plain, packed):
        for name in ("select", "convert", "stats"):
            args, _ = command(name, source, tmp_path / f"{name}{source.suffix}", "--max-gzip-ratio", "0")
            result, rss = peak_rss_mib(*args)
            assert result.returncode == 0, result.stderr
            assert counts(result) == (4, 3, 1)
            assert rss < baseline_rss + 60, (name, source.name, rss, baseline_rss)  # the line is 160 MiB
            if name != "stats":
                assert "over the limit of 4194304 (--max-record-bytes)" in quarantined(result)[0]["reason"]


def test_oversized_array_element_streams_past_in_flat_memory(tmp_path: Path, baseline_rss: float) -> None:
    items = [{"instruction": "a", "output": "x"}, {"instruction": "big", "output": "y" * (120 << 20)},
             {"instruction": "b", "output": "z"}]  # fmt: skip
    source = tmp_path / "big.json"
    source.write_text(json.dumps(items, indent=4))
    for name in ("select", "convert"):
        args, _ = command(name, source, tmp_path / name)
        result, rss = peak_rss_mib(*args)
        assert result.returncode == 0, result.stderr
        assert counts(result) == (3, 2, 1)
        assert rss < baseline_rss + 60, (name, rss, baseline_rss)
        rejected = quarantined(result)[0]
        assert rejected["line"] == 6 and "over the limit of 4194304 (--max-record-bytes)" in rejected["reason"]


def test_a_nesting_bomb_is_quarantined_and_the_limits_are_flags(tmp_path: Path) -> None:
    source = tmp_path / "deep.jsonl"
    source.write_bytes(records(2) + b"[" * (1 << 20) + b"\n" + b'{"instruction": "x", "output": {"a": [[1]]}}\n')
    result = run("select", str(source), "-o", str(tmp_path / "a.jsonl"), "--k", "5")
    assert counts(result) == (4, 2, 2)
    assert "nested deeper than 100 levels (--max-depth)" in quarantined(result)[0]["reason"]
    result = run("convert", str(source), "-o", str(tmp_path / "b.jsonl"), "--max-record-bytes", "1000")
    reasons = [r["reason"] for r in quarantined(result)]
    assert counts(result) == (4, 2, 2)
    assert reasons == ["record is 1048576 bytes, over the limit of 1000 (--max-record-bytes)",
                       "field 'output' must be a string, got dict"]  # fmt: skip
    result = run("convert", str(source), "-o", str(tmp_path / "c.jsonl"), "--max-depth", "3")
    assert [r["reason"] for r in quarantined(result)] == ["nested deeper than 3 levels (--max-depth)"] * 2
    result = run("stats", str(source), "--max-record-bytes", "1000")
    assert counts(result) == (4, 2, 2)


# ------------------------------------------------------------------------- folders, datasets, the Hub


def test_folders_datasets_and_hub_ids_are_clear_errors(tmp_path: Path) -> None:
    import datasets

    folder = tmp_path / "plain_folder"
    folder.mkdir()
    (folder / "notes.txt").write_text("not data")
    no_train = tmp_path / "no_train"
    rows = [{"instruction": "i", "output": "o"}]
    datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)}).save_to_disk(str(no_train))
    cases = [
        (folder, "is a folder, but not a Hugging Face dataset saved with save_to_disk"),
        (no_train, "this DatasetDict has no 'train' split (it has test)"),
    ]
    for source, phrase in cases:
        for name in ("select", "convert", "stats"):
            args, _ = command(name, source, tmp_path / name)
            assert_one_line_error(run(*args), source, Err(phrase))
    for name in ("select", "convert", "stats"):  # longsift's own check answers, before datasets' minutes of retries
        args, _ = command(name, Path("some-org/some-dataset"), tmp_path / name)
        result = run(*args)
        assert_one_line_error(result, Path("some-org/some-dataset"), Err("cannot reach the Hugging Face Hub"))
        assert "pass a local file or folder" in result.stderr
    result = run("select", "data/missing.jsonl", "-o", str(tmp_path / "m.jsonl"))
    assert_one_line_error(result, Path("data/missing.jsonl"), Err("no such file or directory"))


# ------------------------------------------------------------------------------ one handle, changes


def test_a_file_replaced_or_changed_while_read_is_an_error(tmp_path: Path) -> None:
    source = tmp_path / "corpus.jsonl"
    data = records(3000)
    other = tmp_path / "other.jsonl"
    other.write_bytes(records(3000)[::-1].replace(b"}{", b"}\n{"))
    for change in ("replace", "append"):
        source.write_bytes(data)
        done = []

        def meddle(offset: int, total: int, change: str = change, done: list = done) -> None:
            if not done:
                done.append(offset)
                if change == "replace":
                    os.replace(other, source)
                    other.write_bytes(source.read_bytes())
                else:
                    with source.open("ab") as handle:
                        handle.write(records(1))

        with pytest.raises(DataError, match="the file changed while it was being read"):
            select(source, k=5, by="chars", workers=1, on_progress=meddle, quarantine=tmp_path / "q.jsonl")
        assert not (tmp_path / "q.jsonl").exists()
        source.write_bytes(data)
        stream = RecordStream(source)
        with pytest.raises(DataError, match="changed while it was being read"):
            for i, _ in enumerate(stream):
                if i == 10 and change == "append":
                    source.write_bytes(data + records(1))
                elif i == 10:
                    os.replace(other, source)
                    other.write_bytes(data)


def test_quarantine_file_is_replaced_each_run_and_removed_when_clean(tmp_path: Path) -> None:
    dirty = HOSTILE / "nan.jsonl"
    clean = HOSTILE / "bom.jsonl"
    out = tmp_path / "sel.jsonl"
    quarantine = tmp_path / "sel.quarantine.jsonl"
    result = run("select", str(dirty), "-o", str(out), "--k", "2")
    assert result.returncode == 0 and len(quarantine.read_bytes().splitlines()) == 1
    first = quarantine.read_bytes()
    failed = run("select", str(HOSTILE / "syntax_error_early.json"), "-o", str(out), "--k", "2")
    assert failed.returncode == 2 and quarantine.read_bytes() == first  # a failed run keeps the last one
    result = run("select", str(clean), "-o", str(out), "--k", "2")
    assert result.returncode == 0 and counts(result) == (3, 3, 0)
    assert not quarantine.exists()  # a clean rerun leaves no stale quarantine
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["sel.jsonl", "sel.manifest.json"])


def test_quarantine_is_written_atomically_by_the_api(tmp_path: Path) -> None:
    quarantine = tmp_path / "q.jsonl"
    quarantine.write_text("previous run\n")
    with pytest.raises(DataError):
        load_all(HOSTILE / "extra_close_brace.json", quarantine=quarantine)
    assert quarantine.read_text() == "previous run\n"
    _, report = load_all(HOSTILE / "nan.jsonl", quarantine=quarantine)
    assert [orjson.loads(line)["line"] for line in quarantine.read_bytes().splitlines()] == [2]
    _, report = load_all(HOSTILE / "crlf.jsonl", quarantine=quarantine)
    assert report.quarantined == 0 and not quarantine.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind
