"""`longsift run recipes/tiny-cpu.yaml`: every stage end to end on CPU, killed twice and resumed.

The run is killed (SIGKILL) once while a model trains and once in the middle of the judge's LLM calls. Each
rerun must skip the finished stages and must not send again any LLM call that had been answered.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from runfixture import cache_rows

from tests.conftest import REPO
from tests.test_kill_run import manifests_describe_the_files

RECIPE = REPO / "recipes" / "tiny-cpu.yaml"
REFINE_CALLS = 64  # the refine stage asks once per selected record
JUDGE_CALLS = 80  # 5 test sets x 8 prompts x 2 orders
JUDGES = 2  # the tiny LLM judge and the `longest` reference judge, each asked once per call


def start(run_dir: Path, data_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "LONGSIFT_DATA": str(data_dir)}
    command = [sys.executable, "-m", "longsift", "run", str(RECIPE), "-o", str(run_dir)]
    return subprocess.Popen(command, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, cwd=run_dir.parent)


def cached_calls(run_dir: Path) -> dict[str, float]:
    # answered: an answer, or a reply cut off at max_tokens (a final failure that keeps its reply)
    return dict(cache_rows(run_dir, "SELECT key, updated_at FROM calls WHERE status = 'ok' OR text IS NOT NULL"))


def kill_when(process: subprocess.Popen[bytes], ready, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, "the run ended before the point where the test kills it"
        assert time.monotonic() < deadline, "the run never reached the point where the test kills it"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()


def ran_and_skipped(log: Path) -> str:
    """The last run's closing line (`done: ran ... skipped ...`; the headline tables follow it)."""
    text = log.read_text(errors="replace")
    return " ".join(text[text.rfind("done: ") :].split()[:60])


def test_tiny_cpu_recipe_survives_kills_and_resumes(tmp_path: Path, data_dir: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    log = tmp_path / "run.log"
    stages = run_dir / ".stages"

    first = start(run_dir, data_dir, log)
    kill_when(first, lambda: (stages / "train-random" / "started").exists())
    assert (stages / "train-refined" / "manifest.json").exists()
    assert not (stages / "train-random" / "manifest.json").exists()
    trained_at = (stages / "train-refined" / "manifest.json").stat().st_mtime_ns

    second = start(run_dir, data_dir, log)
    kill_when(second, lambda: len(cached_calls(run_dir)) >= REFINE_CALLS + 16)
    answered = cached_calls(run_dir)  # read after the kill: exactly what had been answered
    assert REFINE_CALLS + 16 <= len(answered) < REFINE_CALLS + JUDGE_CALLS
    assert (stages / "train-refined" / "manifest.json").stat().st_mtime_ns == trained_at  # not trained again

    third = start(run_dir, data_dir, log)
    assert third.wait(timeout=900) == 0, log.read_text(errors="replace")[-3000:]
    tail = ran_and_skipped(log)
    assert "ran 4 stage(s) ['judge', 'judge-longest', 'analyze', 'report']" in tail
    assert "skipped 8" in tail
    final = cached_calls(run_dir)
    assert len(final) == REFINE_CALLS + JUDGES * JUDGE_CALLS
    assert all(final[key] == stamp for key, stamp in answered.items())  # nothing answered was asked again

    summary = json.loads(next((run_dir / "judge").glob("*__vs__random-64/summary.json")).read_text())
    assert summary["calls"]["sent"] == REFINE_CALLS + JUDGE_CALLS - len(answered)
    assert summary["paper"]["all"]["n"] == 40
    assert summary["paper"]["all"]["judged"] + summary["paper"]["all"]["failed"] == 40
    html = (run_dir / "report" / "report.html").read_text()
    assert "Pairwise judging" in html and "longest-refined-64" in html
    assert (run_dir / "report" / "report.md").exists()
    for name in ("longest-refined-64", "random-64"):
        generations = (run_dir / "generate" / f"{name}.jsonl").read_text().splitlines()
        assert len(generations) == 40
    manifests_describe_the_files(run_dir)  # every stage's outputs, each file with its size and sha256
    assert len(list(stages.glob("*/manifest.json"))) == 12
    demo_sections_hold_numbers(run_dir)


def demo_sections_hold_numbers(run_dir: Path) -> None:
    """The demo ends with real numbers: the refiner (the tiny model taught the reply format) refined some records
    and not others, the reference judge judged every prompt, the analysis says how much of the tiny LLM judge a
    length-only judge reproduces."""
    refined = [json.loads(line) for line in (run_dir / "select" / "refined.jsonl").read_text().splitlines()]
    statuses = [row["metadata"]["refine_status"] for row in refined]
    assert len(statuses) == REFINE_CALLS and "refined" in statuses, statuses
    assert set(statuses) - {"refined"}, statuses  # mixed: some kept their answer (failed or unchanged)
    for row, status in zip(refined, statuses, strict=True):
        answer = row["messages"][-1]["content"]
        assert (answer != row["metadata"]["original_response"]) == (status == "refined")
    longest = json.loads(next((run_dir / "judge").glob("*__vs__random-64.longest/summary.json")).read_text())
    assert longest["judge"] == "longest" and longest["paper"]["all"]["failed"] == 0
    assert longest["paper"]["all"]["judged"] == 40 and longest["paper"]["all"]["win_pct"] is not None
    analysis = json.loads((run_dir / "analyze" / "analysis.json").read_text())
    by_judge = {c["judge"]: c["policies"]["paper"]["length_only_agreement"] for c in analysis["comparisons"]}
    assert by_judge["longest/paper"]["n"] == 40 and by_judge["longest/paper"]["agreement_pct"] is not None
    assert len(by_judge) == JUDGES
