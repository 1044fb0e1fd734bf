"""One cache home, one data folder, honest progress, quiet third parties (issue 13, part 4)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from longsift import layout
from longsift.errors import ConfigError
from longsift.llm.cache import RUN_CACHE, default_location, locate
from longsift.llm.progress import FreshRate, RunProgress, format_cost, format_eta, format_rate
from longsift.llm.server import LocalChatServer
from longsift.llm.settings import LLMOptions
from tests.conftest import REPO, run_cli


def test_every_command_caches_in_one_place_that_llm_cache_reads(tmp_path: Path) -> None:
    assert default_location() == Path(os.environ["LONGSIFT_CACHE_DIR"]) / "llm" / "llm-cache.sqlite"
    assert (
        LLMOptions().cache_path(tmp_path / "a" / "out.jsonl")
        == LLMOptions().cache_path(tmp_path / "b")
        == (default_location())
    )  # the output does not move it
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"q{i}"}) + "\n" for i in range(3)))
    with LocalChatServer(lambda request: "an answer") as server:
        llm = ["--base-url", server.base_url, "--model", server.model]
        run_cli("llm", "run", str(prompts), "-o", str(tmp_path / "elsewhere" / "answers.jsonl"), *llm)
    assert not (tmp_path / "elsewhere" / "llm-cache.sqlite").exists()
    stats = json.loads(run_cli("llm", "cache", "stats", "--json").stdout)  # no --cache: the same file
    assert stats["path"] == str(default_location()) and stats["ok"] == 3


def test_llm_cache_takes_a_run_folder(tmp_path: Path) -> None:
    from longsift.llm.cache import Cache

    run = tmp_path / "run"
    (run / RUN_CACHE).parent.mkdir(parents=True)
    Cache(run / RUN_CACHE).close()
    assert locate(run) == run / RUN_CACHE and locate(None) == default_location()
    stats = json.loads(run_cli("llm", "cache", "stats", "--cache", str(run), "--json").stdout)
    assert stats["path"] == str(run / RUN_CACHE)
    missing = run_cli("llm", "cache", "stats", check=False)  # nothing cached yet in this test's cache home
    assert missing.returncode == 2 and "no cache yet" in missing.stderr and "--cache RUN_DIR" in missing.stderr


def test_the_data_folder_does_not_depend_on_the_working_directory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LONGSIFT_DATA", str(tmp_path / "data"))
    assert layout.data_dir() == tmp_path / "data" and layout.data_dir("given") == Path("given")
    monkeypatch.delenv("LONGSIFT_DATA")
    here = layout.data_dir(required=False)
    monkeypatch.chdir(tmp_path)
    assert layout.data_dir(required=False) == here == REPO.parent / "shared" / "data"
    if not here.is_dir():
        with pytest.raises(ConfigError, match="set LONGSIFT_DATA"):
            layout.data_dir()
    else:
        assert layout.data_dir() == here


def test_rates_count_fresh_calls_only() -> None:
    now = [100.0]
    rate = FreshRate(cached=0, clock=lambda: now[0])
    assert rate.per_second() is None and rate.eta_seconds(10) is None  # nothing sent yet: no rate, no ETA
    now[0] = 104.0
    rate.fresh = 2
    assert rate.per_second() == pytest.approx(0.5) and rate.eta_seconds(8) == pytest.approx(16.0)
    assert format_rate(0.5) == "0.5 req/s" and format_rate(0.01) == "0.6 req/min" and format_rate(None) == "- req/s"
    assert format_eta(3725) == "eta 1:02:05" and format_eta(None) == "eta -"


def test_progress_tells_cache_hits_from_calls() -> None:
    bar = RunProgress("t", 5, enabled=False, cached=40)  # 40 served from the cache before the bar
    bar.advance(cost=0.0, unpriced=0, failed=0, cached=40)  # a fresh call
    bar.advance(cost=0.0, unpriced=0, failed=0, cached=41)  # a hit (another process answered it)
    bar.advance(cost=0.0, unpriced=0, failed=1, cached=41)  # a fresh call that failed
    assert (bar.rate.fresh, bar.rate.cached) == (2, 41)


def test_cost_of_unknown_price() -> None:
    assert format_cost(0.0, 3) == "unknown price"
    assert format_cost(0.25, 2) == "$0.2500 + unknown price (2 calls)"
    assert format_cost(0.25, 0) == "$0.2500" and "?" not in format_cost(0.0, 1)


PROBE = """
import os, sys, warnings
from longsift.cli import quiet_third_party
quiet_third_party(verbose=sys.argv[1] == "1")
from huggingface_hub.utils import are_progress_bars_disabled
print(os.environ.get("TRANSFORMERS_VERBOSITY"), are_progress_bars_disabled())
"""


@pytest.mark.parametrize(("verbose", "expected"), [("0", "error True"), ("1", "None False")])
def test_third_party_noise_is_silenced_unless_verbose(verbose: str, expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_", "DATASETS_"))}
    env.pop("LONGSIFT_VERBOSE", None)
    done = subprocess.run([sys.executable, "-c", PROBE, verbose], capture_output=True, text=True, check=True,
                          env={**env, "PYTHONPATH": str(REPO)})  # fmt: skip
    assert done.stdout.strip() == expected


def test_verbose_is_a_root_flag() -> None:
    assert "--verbose" in run_cli("--help", env={"COLUMNS": "200"}).stdout
