"""Shared fixtures: the real data folder (LONGSIFT_DATA), offline Hugging Face, a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Nothing may be fetched from a hub in tests: without these a lookup retries for ~46 s first.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Under pytest-xdist there is a process per core already: a second torch/OpenMP thread per process (and per CLI
# subprocess, which inherits this) only fights for the cores. Measured on 2 cores, -n 2: 5:14 -> 4:10 on the
# training, embedding and generation tests. Set before anything imports torch.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for threads in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(threads, "1")
# File-hash caches of manifests (longsift.manifest.HashCache) go to a folder of this session, not the user's.
os.environ.setdefault("LONGSIFT_CACHE_DIR", tempfile.mkdtemp(prefix="longsift-test-cache-"))

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LONGSIFT_DATA", REPO.parent / "shared" / "data")).resolve()


def pytest_sessionstart(session: pytest.Session) -> None:
    if not (DATA / "README.md").is_file():
        raise pytest.UsageError(
            f"shared data not found at {DATA}: set LONGSIFT_DATA to the folder holding alpaca_subsets/, lima/, "
            "test/, alpaca_eval/ and mt_bench/ (CI lays it at ../shared/data)."
        )


@pytest.fixture(autouse=True)
def own_cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test its own LONGSIFT_CACHE_DIR: every command without --cache shares the LLM cache there, and one
    test's answers must not serve another's."""
    monkeypatch.setenv("LONGSIFT_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(autouse=True)
def restore_registries() -> Iterator[None]:
    """Every Registry (steps, units, formats, backends, ...) as it was before the test: a toy entry a test
    registers never reaches the next one."""
    from longsift.registry import Registry

    snapshot = Registry.snapshot_all()
    yield
    Registry.restore_all(snapshot)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def alpaca_pool(data_dir: Path) -> Path:
    return data_dir / "alpaca_subsets" / "alpaca_public_pool.jsonl.gz"


def run_cli(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
    input: str | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """Run `python -m longsift ARGS` in a real subprocess, as a user would."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    result = subprocess.run(
        [sys.executable, "-m", "longsift", *args], cwd=cwd, env=full_env, capture_output=True, text=True,
        input=input, timeout=timeout,
    )  # fmt: skip
    if check and result.returncode != 0:
        raise AssertionError(f"longsift {' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="session")
def cli():
    return run_cli


@pytest.fixture(scope="session")
def tiny_trained(tmp_path_factory: pytest.TempPathFactory, alpaca_pool: Path):
    """A tiny Llama trained with the tiny-cpu recipe on the first 200 examples of the public Alpaca pool.

    Built once per session (importing TRL alone costs seconds); `.output` is a model folder that
    AutoModelForCausalLM.from_pretrained and `longsift generate` read. Trained on one torch thread: the small steps
    gain nothing from two, and threads fight when other jobs share the cores (several times slower).
    """
    import torch

    from longsift.train import train

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        output = tmp_path_factory.mktemp("tiny-trained") / "model"
        return train(alpaca_pool, output, tiny=True, overrides={"max_examples": 200}, log=lambda line: None)
    finally:
        torch.set_num_threads(threads)


def _ray_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("ray") is not None


# The Ray tests need the optional `ray` extra (make test-ray installs it): without it they are not collected.
collect_ignore_glob = (
    []
    if _ray_installed()
    else ["test_ray.py", "test_ray_passes.py", "test_ray_io.py", "test_ray_embed.py", "ray_cluster.py"]
)


@pytest.fixture(scope="module")
def chromium():
    """A real headless Chromium (tests/chromium_cdp.py) for the report pages; skipped, saying so, only where no
    binary is found (.ci/run installs Debian's)."""
    from chromium_cdp import Chromium, find_chromium

    binary = find_chromium()
    if binary is None:
        pytest.skip("no headless Chromium on PATH: install Debian's chromium (apt-get install -y chromium) "
                    "to run the report's browser tests")  # fmt: skip
    with Chromium(binary) as browser:
        yield browser
