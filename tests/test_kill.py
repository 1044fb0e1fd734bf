"""SIGKILL `convert`, `select`, `refine` and `generate` at seeded random moments, as a crash or the OOM killer would.

Each command is first run once uninterrupted (in its own folder) to measure its time and get the expected bytes;
then it is killed again and again at random fractions of that time, on top of a previous good output. After every
kill: each output path holds the previous output or the new complete one, byte for byte (never a part); after the
final uninterrupted rerun: the result equals the uninterrupted run's bytes, no temporary file is left, and (refine)
no request whose answer was already in the cache was sent again.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from longsift.outputs import TEMP_PREFIX
from tests.conftest import REPO

SEED = 10  # issue 10
KILLS = {"convert": 5, "select": 5, "refine": 5, "generate": 3}  # with tests/test_kill_run.py: over 20


def start(argv: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    """`python -m longsift ARGV` in its own process group (select's workers die with it)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "longsift", *argv], cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip


def run_whole(argv: list[str], cwd: Path) -> float:
    began = time.perf_counter()
    process = start(argv, cwd)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err.decode()
    return time.perf_counter() - began


def kill_after(argv: list[str], cwd: Path, delay: float) -> float | None:
    """Start the command and SIGKILL its process group after `delay` seconds; None when the kill landed, else
    the seconds the command took to finish first."""
    began = time.perf_counter()
    process = start(argv, cwd)
    try:
        process.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return None
    finally:
        assert process.stderr is not None
        process.stderr.close()
    assert process.returncode == 0
    return time.perf_counter() - began


def snapshot(folder: Path, names: list[str]) -> dict[str, bytes | None]:
    return {name: (folder / name).read_bytes() if (folder / name).is_file() else None for name in names}


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(TEMP_PREFIX))


def kill_repeatedly(
    name: str, argv: list[str], folder: Path, reference: Path, outputs: list[str], seconds: float, *,
    side: tuple[str, ...] = (), low: float = 0.2, after_kill: Callable[[], None] | None = None,
    left: Callable[[], float] = lambda: 1.0,
) -> int:  # fmt: skip
    """Kill `argv` KILLS[name] times in `folder`: after each kill every output is the previous one or the new one
    (`side` files are the readers' quarantine: compared after the rerun only); then rerun it whole. `left()` is
    the share of the work a rerun still has to do (a resumed run is shorter), applied to the measured time.
    A run that finishes before its kill is checked the same and retried, aimed within the time it took: how
    loaded the machine is changes how many tries it takes, not what is tested."""
    rng = random.Random(f"{SEED}:{name}")
    previous = snapshot(folder, outputs)
    expected = snapshot(reference, [*outputs, *side])
    killed = 0
    for _ in range(3 * KILLS[name]):
        if killed == KILLS[name]:
            break
        finished = kill_after(argv, folder, seconds * rng.uniform(low, 0.98) * max(left(), 0.4))
        if finished is None:
            killed += 1
        else:
            seconds = min(seconds, finished)
        now = snapshot(folder, outputs)
        for out in outputs:
            assert now[out] in (previous[out], expected[out]), f"{name}: {out} is neither the previous nor the new one"
        if after_kill is not None:
            after_kill()
    print(f"{name}: {killed} of {KILLS[name]} kills landed (uninterrupted run {seconds:.2f}s)")
    run_whole(argv, folder)
    assert snapshot(folder, [*outputs, *side]) == expected, f"{name}: the rerun differs from an uninterrupted run"
    assert temporaries(folder) == [], f"{name}: temporary files left after the rerun"
    return killed


@pytest.fixture(scope="module")
def pool_part(alpaca_pool: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 6,000 rows of the public pool plus one bad line (so a quarantine is written too)."""
    import gzip

    path = tmp_path_factory.mktemp("kill-data") / "pool.jsonl"
    with gzip.open(alpaca_pool, "rb") as rows:
        lines = [next(rows) for _ in range(6000)]
    path.write_bytes(b"".join(lines[:100]) + b"{broken\n" + b"".join(lines[100:]))
    return path


def folders(tmp_path: Path) -> tuple[Path, Path]:
    reference, work = tmp_path / "reference", tmp_path / "work"
    reference.mkdir(parents=True)
    work.mkdir(parents=True)
    return reference, work


def previous_output(work: Path, argv: list[str]) -> None:
    """A previous good output at every path (made by the same command on other options)."""
    run_whole(argv, work)


def test_kill_convert_and_select(pool_part: Path, tmp_path: Path):
    reference, work = folders(tmp_path)
    source = str(pool_part)
    convert = ["convert", source, "-o", "out.jsonl"]
    seconds = run_whole(convert, reference)
    previous_output(work, ["convert", str(reference / "out.jsonl"), "-o", "out.jsonl", "--output-format", "messages"])
    killed = kill_repeatedly(
        "convert", convert, work, reference, ["out.jsonl"], seconds, side=("out.quarantine.jsonl",)
    )

    reference, work = folders(tmp_path / "select")
    select = ["select", source, "-o", "longest.json", "--k", "2000", "--by", "words", "-q", "--workers", "2"]
    seconds = run_whole(select, reference)
    previous_output(work, ["select", source, "-o", "longest.json", "--k", "100", "-q"])
    manifest = work / "longest.manifest.json"

    def manifest_is_whole() -> None:  # it holds timings, so it is not byte-equal to the reference's
        assert orjson.loads(manifest.read_bytes())["command"] == "select"

    killed += kill_repeatedly("select", select, work, reference, ["longest.json"], seconds,
                              side=("longest.quarantine.jsonl",), after_kill=manifest_is_whole)  # fmt: skip
    assert orjson.loads(manifest.read_bytes())["summary"]["selected"] == 2000
    assert killed >= 6, f"only {killed} of {KILLS['convert'] + KILLS['select']} kills landed before the end"


def reply(request) -> str:
    import hashlib

    return f"[Better Answer] {hashlib.sha256(request.prompt.encode()).hexdigest()[:16]} said better. [End]"


def cached_prompts(cache: Path) -> set[str]:
    from longsift.llm.cache import Cache

    if not cache.is_file():
        return set()
    store = Cache(cache)
    try:
        return {entry.request["messages"][-1]["content"] for entry in store.entries("ok")}
    finally:
        store.close()


def test_kill_refine_never_pays_twice_for_an_answer(pool_part: Path, tmp_path: Path):
    from longsift.llm.server import LocalChatServer

    source = tmp_path / "sample.jsonl"
    source.write_bytes(b"".join(pool_part.read_bytes().splitlines(keepends=True)[:48]))
    reference, work = folders(tmp_path)
    with LocalChatServer(reply, latency=0.06) as server:
        refine = ["refine", str(source), "-o", "refined.jsonl", "--model", "local-test", "--base-url",
                  server.base_url, "--cache", "cache.sqlite", "--concurrency", "2", "--no-progress"]  # fmt: skip
        seconds = run_whole(refine, reference)
        sent_whole = len(server.log)
        (work / "refined.jsonl").write_bytes(b'{"previous": "a good earlier output"}\n')
        known: list[tuple[float, set[str]]] = []  # (just after a kill, prompts whose answers the cache held then)

        def note_cache() -> None:
            known.append((time.time(), cached_prompts(work / "cache.sqlite")))

        killed = kill_repeatedly("refine", refine, work, reference, ["refined.jsonl", "refined.failures.jsonl"],
                                 seconds, low=0.3, after_kill=note_cache,
                                 left=lambda: 1 - len(cached_prompts(work / "cache.sqlite")) / 48)  # fmt: skip
        sent = server.log.entries()[sent_whole:]
    for moment, answered in known:
        again = [e.prompt for e in sent if e.request.arrived > moment and e.prompt in answered]
        assert not again, f"{len(again)} requests whose answers were cached before a kill were sent again"
    assert cached_prompts(work / "cache.sqlite") == cached_prompts(reference / "cache.sqlite")
    assert len(sent) <= 48 + 2 * killed, "more requests than records plus those in flight at each kill"
    assert any(answered for _, answered in known), "no kill landed after an answer was cached"
    assert killed >= 3


def test_kill_generate_resumes_to_the_same_answers(data_dir: Path, tmp_path: Path):
    from tests.tiny_llm import build_model

    model = build_model(data_dir, tmp_path / "model")
    reference, work = folders(tmp_path)
    generate = ["generate", str(model), "vicuna", "-o", "g.jsonl", "--k", "8", "--max-new-tokens", "16",
                "--prompts-per-batch", "2", "--model-name", "tiny", "--data-dir", str(data_dir)]  # fmt: skip
    seconds = run_whole(generate, reference)
    previous = b"".join((reference / "g.jsonl").read_bytes().splitlines(keepends=True)[:2])
    (work / "g.jsonl").write_bytes(previous)  # a good earlier output: two answers

    def left() -> float:
        partial = work / "g.jsonl.partial"
        return 1 - len(partial.read_bytes().splitlines()) / 8 if partial.is_file() else 1.0

    killed = kill_repeatedly("generate", generate, work, reference, ["g.jsonl"], seconds, low=0.55, left=left)
    assert not (work / "g.jsonl.partial").exists()
    assert orjson.loads((work / "g.manifest.json").read_bytes())["summary"]["prompts"] == 8
    assert killed >= 1
