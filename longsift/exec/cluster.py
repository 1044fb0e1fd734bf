"""Joining a Ray cluster: an address given (`--ray-address`, RAY_ADDRESS), else one already joined in this
process, else a local one on this machine's cores."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from longsift.errors import UsageError
from longsift.exec import require_ray


def connect(address: str | None = None) -> Any:
    """The `ray` module, initialised; the workers see this process' import path (so a source checkout works)."""
    require_ray()
    import ray

    if not ray.is_initialized():
        # No address: a local cluster, as documented; not Ray's own default, which joins whatever cluster
        # /tmp/ray last recorded on this machine (a stale record of a stopped one waits there forever).
        address = address or os.environ.get("RAY_ADDRESS") or "local"
        path = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
        env = {"env_vars": {"PYTHONPATH": path}} if address == "local" else None
        ray.init(address=address, runtime_env=env, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.ERROR)  # fmt: skip
    _quiet_progress()  # also where the caller joined the cluster itself (a notebook, a benchmark)
    return ray


def _quiet_progress() -> None:
    """Ray Data's own progress bars write to stderr; longsift reports progress itself."""
    from ray.data import DataContext

    logging.getLogger("ray.data").setLevel(logging.ERROR)
    context = DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False


def cpus() -> int:
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def actors(workers: int | None, shards: int, gpus_per_worker: float = 0.0) -> int:
    """How many actors run shards at once: as asked (default: the cluster's CPUs), at most one per shard and as
    many as the cluster's GPUs hold; a GPU ask the cluster cannot meet is one clear line, not a wait forever."""
    import ray

    count = max(1, min(workers or cpus(), shards))
    if gpus_per_worker:
        gpus = float(ray.cluster_resources().get("GPU", 0))
        if gpus < gpus_per_worker:
            raise UsageError(f"--ray-gpus-per-worker {gpus_per_worker:g}: the Ray cluster has {gpus:g} GPU(s)")
        count = min(count, int(gpus // gpus_per_worker))
    return count


def reserved_cpus() -> int:
    """In a task or actor: the CPUs Ray reserved for it (its threads should use these, not the whole node)."""
    import ray

    return max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1)))
