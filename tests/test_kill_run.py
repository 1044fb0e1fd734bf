"""`longsift run --force STAGE` SIGKILLed at seeded random moments, on a small recipe (select -> refine -> report).

The refiner is the project's local OpenAI-protocol server, reached over HTTP by the `longsift run` subprocess.
After each kill: no partial file at any output path (each one is either absent or byte for byte the output of
an uninterrupted run), the previous good selection survives, every stage manifest on disk describes the files
on disk (so the next run can only skip what is intact), and no request whose answer was in the cache when the
process started was sent by it. At the end an uninterrupted `run` gives exactly the reference run's files, and
an output truncated by hand (what a non-atomic writer left before) is seen and rebuilt, not skipped.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
from runfixture import cache_rows

from longsift.llm.server import LocalChatServer, ServedRequest
from tests.conftest import REPO

SEED = 20261201
FORCED = ("longest", "refined", "report")
RECORDS = 40
OUTPUTS = ("select/longest.json", "select/summary.json", "select/longest.manifest.json", "select/refined.jsonl",
           "report/report.html", "report/report.md")  # fmt: skip


def respond(request: ServedRequest) -> str:
    """A valid refinement for every prompt (some keep the answer, some rewrite it), decided by the prompt."""
    shown = request.prompt.split("[The Start of Answer]\n", 1)[1].split("\n\n[The End of Answer]", 1)[0]
    if int(hashlib.sha256(shown.encode()).hexdigest(), 16) % 3 == 0:
        return f"1. Fine as it is.\n2. [Better Answer]\n{shown}\n[End]"
    return f"1. Too terse.\n\n2. [Better Answer]\n**Answer.** {shown}\n\n- one more detail\n[End]"


def write_recipe(folder: Path, base_url: str) -> Path:
    llm = {"backend": "openai", "model": "local-test", "base_url": base_url, "concurrency": 2}
    recipe = {
        "name": "kill",
        "run_dir": str(folder / "run"),
        "stages": [
            {"name": "longest", "uses": "select",
             "with": {"source": "${data}/alpaca_subsets/alpaca_public_pool.jsonl.gz", "k": RECORDS, "by": "words"}},
            {"name": "refined", "uses": "refine", "with": {"input": "${longest}", "max_tokens": 64, "llm": llm}},
            {"name": "report", "uses": "report", "with": {"title": "kill test"}},
        ],
    }  # fmt: skip
    path = folder / "recipe.json"  # JSON is YAML
    folder.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(recipe))
    return path


def start(recipe: Path, data_dir: Path, log: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "LONGSIFT_DATA": str(data_dir), "COLUMNS": "200"}
    command = [sys.executable, "-m", "longsift", "run", str(recipe), *args]
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def finish(recipe: Path, data_dir: Path, log: Path, *args: str) -> tuple[str, float]:
    began = time.monotonic()
    process = start(recipe, data_dir, log, *args)
    assert process.wait(timeout=300) == 0, log.read_text(errors="replace")[-3000:]
    return log.read_text(errors="replace"), time.monotonic() - began


# what differs between two uninterrupted runs: the run folder's path, timings, the report's clock, a manifest's
# clock and the stat fields of the files it describes
VOLATILE = [
    (re.compile(rb'("|&quot;)seconds("|&quot;): [0-9.e-]+'), rb"\1seconds\2: S"),
    (re.compile(rb'"(started_at|finished_at)": "[^"]*"'), rb'"\1": "T"'),
    (re.compile(rb'"(mtime_ns|ctime_ns|ino)": \d+'), rb'"\1": 0'),
    (re.compile(rb"\d{4}-\d\d-\d\d \d\d:\d\d UTC"), b"DATE"),
    (re.compile(rb"(<th>seconds</th><td>)[0-9.,]+"), rb"\1S"),  # the report's selection summary table
]


def snapshot(run_dir: Path) -> dict[str, bytes]:
    """The output files that exist, each checked whole (it parses) and with its volatile parts taken out."""
    found = {}
    for name in OUTPUTS:
        path = run_dir / name
        if not path.exists():
            continue
        data = path.read_bytes()
        if name.endswith(".json"):
            orjson.loads(data)
        elif name.endswith(".jsonl"):
            assert data.endswith(b"\n") and all(orjson.loads(line) for line in data.splitlines())
        data = data.replace(str(run_dir).encode(), b"RUN")
        for pattern, replacement in VOLATILE:
            data = pattern.sub(replacement, data)
        found[name] = data
    return found


def answered(run_dir: Path) -> dict[str, float]:
    """{user prompt: updated_at} of the calls the cache holds as answered."""
    prompts = {}
    for request, updated_at in cache_rows(run_dir, "SELECT request, updated_at FROM calls WHERE status = 'ok'"):
        messages = orjson.loads(request)["messages"]
        prompts[next(m["content"] for m in reversed(messages) if m["role"] == "user")] = updated_at
    return prompts


def wait_until(process: subprocess.Popen[bytes], ready: Callable[[], bool]) -> bool:
    """Poll until `ready()`; False when the process ended first."""
    while process.poll() is None:
        if ready():
            return True
        time.sleep(0.005)
    return False


def started_since(marker: Path, since_ns: int) -> bool:
    """The stage's `started` marker was written by the process started at `since_ns`."""
    return marker.exists() and marker.stat().st_mtime_ns >= since_ns


def manifests_describe_the_files(run_dir: Path) -> None:
    """Every stage that has a manifest has its outputs on disk exactly as recorded: nothing to skip wrongly."""
    for manifest in (run_dir / ".stages").glob("*/manifest.json"):
        record = orjson.loads(manifest.read_bytes())  # whole: written atomically
        for name, described in record["files"].items():
            data = (run_dir / name).read_bytes()
            assert len(data) == described["size"] and hashlib.sha256(data).hexdigest() == described["sha256"], name


def test_run_force_killed_at_random_moments(tmp_path: Path, data_dir: Path) -> None:
    rng = random.Random(SEED)
    with LocalChatServer(respond, latency=0.08) as server:
        # the reference: one uninterrupted run, then each forced stage once, all served from its cache
        reference_recipe = write_recipe(tmp_path / "reference", server.base_url)
        ref_dir = tmp_path / "reference" / "run"
        finish(reference_recipe, data_dir, tmp_path / "reference.log")
        assert len(server.log) == RECORDS
        reference = snapshot(ref_dir)
        assert set(reference) == set(OUTPUTS)
        seconds = {stage: orjson.loads((ref_dir / ".stages" / stage / "manifest.json").read_bytes())["seconds"]
                   for stage in FORCED}  # fmt: skip
        for stage in FORCED:
            finish(reference_recipe, data_dir, tmp_path / "ref.log", "--force", stage)
        assert len(server.log) == RECORDS and snapshot(ref_dir) == reference  # nothing asked again, same files

        # the killed run: a good selection first, then `run --force STAGE` killed again and again
        recipe = write_recipe(tmp_path / "killed", server.base_url)
        run_dir = tmp_path / "killed" / "run"
        finish(recipe, data_dir, tmp_path / "first.log", "--until", "longest")
        plan = ["longest", "longest", "report", "refined"]
        rng.shuffle(plan)
        plan = ["refined", "refined", *plan]  # first while the refiner has calls to make: kills among them
        kills, ever = 0, {}
        for attempt, stage in enumerate(plan):
            # a moment inside the forced stage (or just after it), as long as it took in the reference run; while
            # the refiner still has calls to make, the moment a seeded number of them has reached the server
            delay = rng.uniform(0.0, 0.8) * max(seconds[stage], 0.2)
            before, cached, sent = snapshot(run_dir), answered(run_dir), len(server.log)
            calls = rng.randint(1, max(1, (RECORDS - len(cached)) // 2))
            log = tmp_path / f"kill{attempt}.log"
            began = time.time_ns()
            process = start(recipe, data_dir, log, "--force", stage)
            if stage == "refined" and len(cached) < RECORDS:
                delay = 0.0
                wait_until(process, lambda: len(server.log) - sent >= calls)  # noqa: B023
            elif wait_until(process, lambda: started_since(run_dir / ".stages" / stage / "started", began)):  # noqa: B023
                time.sleep(delay)
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                kills += 1
            process.wait()
            print(f"kill {attempt}: --force {stage} +{delay:.2f} s, {len(server.log) - sent} requests sent")
            if stage == "refined" and len(cached) < RECORDS:
                assert len(server.log) - sent < RECORDS - len(cached), "killed after the refiner's last call"

            after = snapshot(run_dir)
            for name, data in after.items():
                assert data == reference[name], f"kill {attempt} ({stage}, +{delay:.2f} s): {name} is not whole"
            assert set(before) <= set(after), f"kill {attempt}: a previous output is gone"
            assert after["select/longest.json"] == reference["select/longest.json"]
            manifests_describe_the_files(run_dir)
            resent = [e.prompt for e in server.log.entries()[sent:] if e.prompt in cached]
            assert not resent, f"kill {attempt}: {len(resent)} answered requests were sent again"
            ever.update(answered(run_dir))
        assert kills >= len(plan) - 2, kills  # a moment past the end of a stage (a loaded machine) kills nothing

        # what a non-atomic writer used to leave: half a file under a complete manifest; it must be rebuilt
        finish(recipe, data_dir, tmp_path / "until.log", "--until", "longest")
        selection = run_dir / "select" / "longest.json"
        selection.write_bytes(selection.read_bytes()[: selection.stat().st_size // 2])
        cached, sent = answered(run_dir), len(server.log)
        log, _ = finish(recipe, data_dir, tmp_path / "final.log")
        assert "rerun longest (select): select/longest.json changed size" in log
        assert "skip longest" not in log
        assert not [e.prompt for e in server.log.entries()[sent:] if e.prompt in cached]

    assert snapshot(run_dir) == reference
    final = answered(run_dir)
    assert len(final) == RECORDS
    assert all(final[prompt] == stamp for prompt, stamp in ever.items())  # answered once, never asked again
    manifests_describe_the_files(run_dir)
