"""On the Ray workers of tests/test_ray_passes.py only (their PYTHONPATH starts here): every model load through the
model runner (longsift.models.loading.load_weights) appends this process' id and the model to $LONGSIFT_TEST_LOADS,
and every shard scan of `select --executor ray` (longsift.exec.ray_select.scan_shard) appends the process' id and
the shard to $LONGSIFT_TEST_SCANS, so a test counts the real loads of each actor and the shards a run really
scanned. Python imports `sitecustomize` at start-up, before any longsift module, so the runner's own
`from ... import load_weights` binds the counting one (the scanner calls `scan_shard` by its module's name)."""

import os

if os.environ.get("LONGSIFT_TEST_LOADS"):
    from longsift.models import loading

    _load_weights = loading.load_weights

    def _counted(model, *args, **kwargs):
        with open(os.environ["LONGSIFT_TEST_LOADS"], "a") as log:
            log.write(f"{os.getpid()} {model}\n")
        return _load_weights(model, *args, **kwargs)

    loading.load_weights = _counted

if os.environ.get("LONGSIFT_TEST_SCANS"):
    from longsift.exec import ray_select

    _scan_shard = ray_select.scan_shard

    def _scanned(index, shard, *args, **kwargs):
        with open(os.environ["LONGSIFT_TEST_SCANS"], "a") as log:
            log.write(f"{os.getpid()} {shard}\n")
        return _scan_shard(index, shard, *args, **kwargs)

    ray_select.scan_shard = _scanned
