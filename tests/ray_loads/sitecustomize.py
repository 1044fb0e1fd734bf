"""On the Ray workers of tests/test_ray_passes.py only (their PYTHONPATH starts here): every model load through the
model runner (longsift.models.loading.load_weights) appends this process' id and the model to $LONGSIFT_TEST_LOADS,
so a test counts the real loads of each actor. Python imports `sitecustomize` at start-up, before any longsift
module, so the runner's own `from ... import load_weights` binds the counting one."""

import os

if os.environ.get("LONGSIFT_TEST_LOADS"):
    from longsift.models import loading

    _load_weights = loading.load_weights

    def _counted(model, *args, **kwargs):
        with open(os.environ["LONGSIFT_TEST_LOADS"], "a") as log:
            log.write(f"{os.getpid()} {model}\n")
        return _load_weights(model, *args, **kwargs)

    loading.load_weights = _counted
