"""Executors: where the per-row work of select, stats and the model passes runs.

`local` is one machine (selection's parallel blocks, a process pool); `ray` runs the same per-row code
(longsift.select, longsift.lengths, longsift.formats, the LLM engine) on a Ray cluster through Ray Data,
one shard per task, and merges the shards' results exactly (see exec/ray_select.py). The option is declared
once (`ExecOptions`) and mixed into the select, stats and convert options, so it is a flag and a recipe key.
"""

from __future__ import annotations

from typing import Literal

from longsift.errors import ConfigError, MissingDependencyError
from longsift.options import Options, option

Executor = Literal["local", "ray"]


class ExecOptions(Options):
    """Where the work runs."""

    executor: Executor = option("local", "Where the work runs: local (this machine) or ray (a Ray cluster; pip install "
                           "longsift[ray]).")  # fmt: skip
    ray_address: str | None = option(
        None, "--executor ray: the cluster to join (auto, ray://HOST:10001, HOST:6379; default: RAY_ADDRESS, else a "
        "local cluster)."
    )  # fmt: skip

    def uses_ray(self) -> bool:
        if self.ray_address is not None and self.executor != "ray":
            raise ConfigError("--ray-address applies to --executor ray only")
        return self.executor == "ray"


class ShardedOptions(ExecOptions):
    """Where select, stats and convert run, and a look first: on Ray, `--dry-run` prints shards, rows, calls and
    cost (exec/survey.py) and runs nothing."""

    dry_run: bool = option(False, "--executor ray: print shards, rows, calls and cost; read no record, write "
                           "nothing.", flags=("--dry-run",), recipe=False)  # fmt: skip

    def dry_run_on_ray(self) -> bool:
        if self.dry_run and not self.uses_ray():
            raise ConfigError("--dry-run applies to --executor ray (select, stats and convert run as they read)")
        return self.dry_run


def require_ray() -> None:
    """Ray is an optional extra: a missing install is one clear line."""
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError:
        raise MissingDependencyError("ray", "ray", "--executor ray") from None


class ModelExecOptions(ExecOptions):
    """Where a pass with a local model runs (select --method ifd, score, refine); on Ray, the GPUs of each actor
    (each loads the model once)."""

    ray_gpus_per_worker: float = option(0.0, "--executor ray: GPUs each actor reserves (a local model: 1).", ge=0)


class PassExecOptions(ModelExecOptions):
    """Where an LLM pass runs; on Ray, also how many actors."""

    ray_workers: int | None = option(None, "--executor ray: actors running shards at once (default: the cluster's "
                                     "CPUs, at most one per shard).", ge=1)  # fmt: skip
