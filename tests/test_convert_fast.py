"""`convert` in parallel blocks (longsift/convert.py) writes exactly what the sequential path writes.

Each case runs both in this process on the same file: the sequential path (`RecordStream` into the format's
writer, as `longsift convert` ran before) and the parallel one (1 and 2 workers, small blocks so that even small
files are cut in many). Output and quarantine must be equal byte for byte, or both must fail with the same
error; where the parallel path declines (it returns None: the CLI then runs the sequential path) nothing may be
left in place. The CLI's manifest (hashed while writing) must equal the sequential run's.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import orjson
import pytest

from longsift import convert, formats
from longsift.formats.load import Quarantine, RecordStream
from longsift.formats.rows import Limits

HOSTILE = Path(__file__).parent / "data" / "hostile"
FORMATS = ("messages", "alpaca", "fastchat")
SUFFIX = {"messages": ".jsonl", "alpaca": ".json", "fastchat": ".json"}


def sequential(source: Path, out: Path, fmt: str, limits: Limits) -> tuple[str, bytes | None, bytes | None]:
    quarantine = out.with_name(out.stem + ".quarantine.jsonl")
    try:
        written = formats.write(RecordStream(str(source), quarantine=Quarantine(quarantine), limits=limits), out, fmt)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}", None, None
    return f"wrote {written}", out.read_bytes(), quarantine.read_bytes() if quarantine.exists() else None


def parallel(
    source: Path, out: Path, fmt: str, limits: Limits, workers: int, block_bytes: int = 4096
) -> tuple[str, bytes | None, bytes | None] | None:
    quarantine = out.with_name(out.stem + ".quarantine.jsonl")
    try:
        done = convert.convert(str(source), out, fmt, None, limits, Quarantine(quarantine), workers=workers,
                               block_bytes=block_bytes)  # fmt: skip
    except Exception as exc:
        assert not out.exists() and not quarantine.exists()
        return f"{type(exc).__name__}: {exc}", None, None
    if done is None:  # declined: nothing of it may be left in place
        assert not out.exists() and not quarantine.exists()
        return None
    written, report, digest = done
    import hashlib

    assert hashlib.sha256(out.read_bytes()).hexdigest() == digest
    assert report.kept == written and report.read == report.kept + report.quarantined
    return f"wrote {written}", out.read_bytes(), quarantine.read_bytes() if quarantine.exists() else None


def both(source: Path, tmp_path: Path, fmt: str, workers: int, limits: Limits = Limits(), **kw: int) -> tuple:
    suffix, folder = SUFFIX[fmt], tmp_path / f"out-{source.name}"
    folder.mkdir()
    expected = sequential(source, folder / f"seq{suffix}", fmt, limits)
    got = parallel(source, folder / f"par{suffix}", fmt, limits, workers, **kw)
    return expected, got


def hostile_files() -> list[Path]:
    return sorted(p for p in HOSTILE.iterdir() if p.suffix in (".json", ".jsonl", ".gz") and p.is_file())


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("source", hostile_files(), ids=lambda p: p.name)
def test_hostile_file_same_bytes(source: Path, fmt: str, workers: int, tmp_path: Path) -> None:
    expected, got = both(source, tmp_path, fmt, workers)
    if got is not None:
        assert got == expected


def made(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / "in" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return path


def pool_lines(alpaca_pool: Path, n: int = 3000) -> list[bytes]:
    return gzip.decompress(alpaca_pool.read_bytes()).splitlines()[:n]


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("fmt", FORMATS)
def test_public_pool_same_bytes(alpaca_pool: Path, fmt: str, workers: int, tmp_path: Path) -> None:
    source = made(tmp_path, "pool.jsonl", gzip.decompress(alpaca_pool.read_bytes()))
    expected, got = both(source, tmp_path, fmt, workers, block_bytes=256 << 10)
    assert got is not None and got == expected
    assert expected[2] is not None  # the pool's bad rows are quarantined, at their file:line


@pytest.mark.parametrize("workers", [1, 2])
def test_pool_as_json_array_and_gzip(alpaca_pool: Path, workers: int, tmp_path: Path) -> None:
    records = [orjson.loads(line) for line in pool_lines(alpaca_pool)]
    array = made(tmp_path, "pool.json", orjson.dumps(records, option=orjson.OPT_INDENT_2))
    packed = made(tmp_path, "pool.jsonl.gz", gzip.compress(b"\n".join(pool_lines(alpaca_pool)) + b"\n"))
    for source in (array, packed):
        expected, got = both(source, tmp_path, "messages", workers)
        assert got is not None and got == expected


def odd_files(alpaca_pool: Path, tmp_path: Path) -> list[Path]:
    lines = pool_lines(alpaca_pool, 400)
    body = b"\n".join(lines) + b"\n"
    huge = orjson.dumps({"instruction": "x", "input": "", "output": "y" * 9000})
    ids = [orjson.dumps({"id": f"r{i % 150}", **orjson.loads(line)}) for i, line in enumerate(lines)]
    unique_ids = [orjson.dumps({"id": i, **orjson.loads(line)}) for i, line in enumerate(lines)]
    return [
        made(tmp_path, "bad_utf8.jsonl", body[:5000] + b'{"instruction": "\xff", "output": "a"}\n' + body[5000:]),
        made(tmp_path, "broken.jsonl", body.replace(b"}\n", b"\n", 7)),
        made(tmp_path, "crlf.jsonl", body.replace(b"\n", b"\r\n")),
        made(tmp_path, "bom.jsonl", b"\xef\xbb\xbf" + body),
        made(tmp_path, "blank.jsonl", body.replace(b"\n", b"\n \n\t\r\n", 30)),
        made(tmp_path, "huge_line.jsonl", body[:20000] + huge + b"\n" + body[20000:]),
        made(tmp_path, "dup_ids.jsonl", b"\n".join(ids) + b"\n"),
        made(tmp_path, "own_ids.jsonl", b"\n".join(unique_ids)),
        made(tmp_path, "unclosed.json", b"[" + b",\n".join(lines)),
        made(tmp_path, "empty.jsonl", b""),
        made(tmp_path, "all_bad.jsonl", b"{\n" * 300),
    ]


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("fmt", FORMATS)
def test_odd_files_same_bytes(alpaca_pool: Path, fmt: str, workers: int, tmp_path: Path) -> None:
    for source in odd_files(alpaca_pool, tmp_path):
        limits = Limits(max_record_bytes=8000)  # the huge line is over it
        expected, got = both(source, tmp_path, fmt, workers, limits)
        if source.name in ("crlf.jsonl", "bom.jsonl", "blank.jsonl", "huge_line.jsonl", "own_ids.jsonl"):
            assert got is not None, source.name  # the parallel path does these itself
        if got is not None:
            assert got == expected, source.name


def test_cli_manifest_matches_the_sequential_run(
    alpaca_pool: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from longsift.cli import build
    from longsift.manifest import read_manifest

    source = made(tmp_path, "pool.jsonl", gzip.decompress(alpaca_pool.read_bytes()))
    monkeypatch.setenv("LONGSIFT_CACHE", str(tmp_path / "cache"))
    runs = {}
    for name in ("fast", "sequential"):
        if name == "sequential":
            monkeypatch.setattr(convert, "applies", lambda source, fmt: False)
        folder = tmp_path / name
        folder.mkdir()
        result = CliRunner().invoke(
            build("convert"), ["convert", str(source), "-o", str(folder / "out.jsonl"), "--workers", "2"]
        )
        assert result.exit_code == 0, result.output
        record = read_manifest(folder / "out.manifest.json")
        assert record is not None
        runs[name] = (record.summary, {k: v.sha256 for k, v in record.files.items()}, record.inputs)
        shutil.copy(folder / "out.jsonl", tmp_path / f"{name}.jsonl")
    assert runs["fast"][0] == runs["sequential"][0] and runs["fast"][2] == runs["sequential"][2]
    assert list(runs["fast"][1].values()) == list(runs["sequential"][1].values())  # (paths differ by folder)
    assert (tmp_path / "fast.jsonl").read_bytes() == (tmp_path / "sequential.jsonl").read_bytes()


def test_a_failed_block_releases_the_blocks_waiting_on_it(tmp_path: Path) -> None:
    """A block's worker waits for the totals of the block before it (convert.Relay): when that block fails
    (here its input handle is a folder's, which cannot be read), the waiting one falls back instead of waiting
    forever; when the totals come, it numbers its rows from them and writes its lines where they say."""
    import os
    import threading

    from longsift.formats.rows import Block

    line = b'{"instruction": "a", "output": "b"}\n'
    folder = os.open(tmp_path, os.O_RDONLY)
    out = os.open(tmp_path / "out.jsonl", os.O_RDWR | os.O_CREAT)
    job = convert.Job("in.jsonl", "messages", Limits(), folder, out_fd=out)
    failing, waiting = Block(0, "lines", 0, 100, 0), Block(1, "lines", 100, 100 + len(line), 0, data=line)
    for first, expected in ((None, "fallback: the worker of block 0 failed"), ((7, 9), None)):
        convert._RELAYS = convert.Relay(8, 2), convert.Relay(8, 1)
        got: list[object] = []
        thread = threading.Thread(
            target=lambda got=got: got.append(convert._convert_star((job, waiting, "alpaca", None, 1))), daemon=True
        )
        thread.start()
        try:
            if first is None:
                failed = convert._convert_star((job, failing, "alpaca", (0, 0), 0))
                assert isinstance(failed, str) and failed.startswith("error: IsADirectoryError")
            else:
                convert._RELAYS[0].put(0, first)
                convert._RELAYS[1].put(0, (5,))
            thread.join(10)
            assert not thread.is_alive()
        finally:
            convert._RELAYS = None
        if expected is not None:
            assert got == [expected]
    os.close(out)
    os.close(folder)
    done, written = got[0], (tmp_path / "out.jsonl").read_bytes()[5:]
    assert isinstance(done, convert.Done) and done.after == (8, 10) and done.at == (5, len(written))
    assert orjson.loads(written) == {"id": "7", "messages": [{"role": "user", "content": "a"},
                                     {"role": "assistant", "content": "b"}], "source": "in.jsonl", "row": 7,
                                     "metadata": {"instruction": "a", "input": ""}}  # fmt: skip
