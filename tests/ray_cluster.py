"""What the Ray tests share: the environment their clusters run in, a local cluster, and a pool cut into shards."""

from __future__ import annotations

import gzip
import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import ray

from longsift import formats

REPO = Path(__file__).resolve().parents[1]
ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(REPO)}


def local_cluster(worker_env: dict[str, str] | None = None) -> Iterator[None]:
    """A local Ray cluster of 2 CPUs (the CI machine's) whose workers import this checkout, for a fixture to yield."""
    os.environ.update(ENV)
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(REPO), **(worker_env or {})}})  # fmt: skip
    yield
    ray.shutdown()


def write_shards(lines: list[bytes], folder: Path, gzipped: int) -> Path:
    """`lines` cut into 4 shards in `folder`/shards, shard `gzipped` compressed: part-0.jsonl, part-1.jsonl.gz..."""
    shards = folder / "shards"
    shards.mkdir()
    size = len(lines) // 4 + 1
    for i in range(4):
        data = b"".join(lines[i * size : (i + 1) * size])
        if i == gzipped:
            (shards / f"part-{i}.jsonl.gz").write_bytes(gzip.compress(data))
        else:
            (shards / f"part-{i}.jsonl").write_bytes(data)
    return shards


def pool_prefix(pool: Path, rows: int, broken_at: int, folder: Path, gzipped: int) -> tuple[Path, Path]:
    """The pool's first `rows` lines with a broken line at `broken_at`: as one file, and as `write_shards`."""
    with gzip.open(pool, "rb") as handle:
        lines = list(itertools.islice(handle, rows))
    lines = lines[:broken_at] + [b"{broken\n"] + lines[broken_at:]
    whole = folder / "pool.jsonl"
    whole.write_bytes(b"".join(lines))
    return whole, write_shards(lines, folder, gzipped)


def written(examples, path: Path, fmt: str) -> bytes:
    formats.write(examples, path, fmt)
    return path.read_bytes()
