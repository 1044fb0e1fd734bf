"""Model passes on Ray: `select --method ifd` and a local-model `score` over the public pool split into shards give
the local executor's output byte for byte, each actor loading its model once (counted on the workers by
tests/ray_loads/sitecustomize.py); what a cluster cannot run is refused in one line. Needs the ray extra."""

from __future__ import annotations

import gzip
import itertools
import os
from pathlib import Path

import pytest

from longsift.formats.load import load
from longsift.select import select

pytestmark = pytest.mark.ray
from ray_cluster import ENV, REPO, local_cluster, write_shards, written  # noqa: E402

HERE = Path(__file__).resolve().parent
ROWS = 320
MAX_LENGTH = 160


@pytest.fixture(scope="module")
def loads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local Ray cluster of 2 CPUs whose workers log each model load to the returned file."""
    log = tmp_path_factory.mktemp("loads") / "loads.txt"
    env = {"PYTHONPATH": os.pathsep.join([str(HERE / "ray_loads"), str(REPO)]), "LONGSIFT_TEST_LOADS": str(log),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}  # fmt: skip
    for _ in local_cluster(env):
        yield log


def loads_by_process(log: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in log.read_text().splitlines() if log.exists() else []:
        counts[line.split()[0]] = counts.get(line.split()[0], 0) + 1
    return counts


@pytest.fixture(scope="module")
def pool(alpaca_pool: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The pool's first ROWS lines as one file and as 4 shards (one gzipped, one with a broken line), and a tiny
    causal LM (built from a config, its tokenizer trained on these records: nothing is downloaded)."""
    from longsift.tiny import build_tiny_model, example_texts

    with gzip.open(alpaca_pool, "rb") as handle:
        lines = list(itertools.islice(handle, ROWS))
    lines = lines[:100] + [b"{broken\n"] + lines[100:]
    folder = tmp_path_factory.mktemp("ifd-shards")
    whole = folder / "pool.jsonl"
    whole.write_bytes(b"".join(lines))
    shards = write_shards(lines, folder, gzipped=1)
    model = build_tiny_model(folder / "model", example_texts(load(whole, quarantine=None)), vocab_size=1024,
                             hidden_size=64, intermediate_size=128)  # fmt: skip
    return whole, shards, model


@pytest.mark.parametrize("method", ["ifd", "superfilter"])
def test_ifd_on_ray_is_the_local_selection_with_one_model_load_per_actor(loads, pool, tmp_path, method):
    whole, shards, model = pool
    options = {"method": method, "k": 60, "model": str(model), "ifd_max_length": MAX_LENGTH}
    local = select(whole, quarantine=tmp_path / "local.q.jsonl", **options)
    loads.write_text("")
    on_ray = select(shards, executor="ray", workers=2, quarantine=tmp_path / "ray.q.jsonl", **options)
    for fmt in ("fastchat", "alpaca"):
        assert written(on_ray.examples, tmp_path / f"r.{fmt}", fmt) == written(
            local.examples, tmp_path / f"l.{fmt}", fmt
        )
    # the same rows, ids and scores, to the bit (only `source` differs: a record's own shard on Ray)
    assert [(e.id, e.row, e.metadata) for e in on_ray.examples] == [(e.id, e.row, e.metadata) for e in local.examples]
    assert all("ifd" in e.metadata for e in on_ray.examples) and len(on_ray.examples) == 60
    a, b = on_ray.summary, local.summary
    assert (a.rows_read, a.rows_kept, a.rows_quarantined, a.dropped) == (
        b.rows_read, b.rows_kept, b.rows_quarantined, b.dropped)  # fmt: skip
    assert a.rows_quarantined >= 1 and b.dropped.get("IFD above 1", 0) > 0
    per_process = loads_by_process(loads)
    assert 1 <= len(per_process) <= 2 < 4, per_process  # 2 actors ran 4 shards
    assert set(per_process.values()) == {1}, per_process  # one load each, before its first shard


def test_local_model_score_on_ray_is_local_with_one_load_per_actor(loads, pool, tmp_path):
    from longsift.exec import ray_passes
    from longsift.llm.settings import LLMSettings
    from longsift.refine.options import ScoreOptions
    from longsift.refine.score import score

    whole, shards, model = pool
    options = ScoreOptions(max_tokens=6)
    # one request per forward pass: a generation's padding would tie its text to the requests batched with it
    settings = LLMSettings(backend="transformers", model=str(model), local_batch_size=1, progress=False)
    local = score(load(whole, quarantine=None), settings.but(cache=tmp_path / "local.sqlite"), options)
    loads.write_text("")
    output = tmp_path / "ray.json"
    run = ray_passes.run_pass("score", shards, output, options, settings.but(cache=tmp_path / "ray.sqlite"),
                              workers=2, say=lambda line: None)  # fmt: skip
    assert len(run.shards) == 4 and sum(m["total"] for m in run.shards) == local.report.total
    assert sum(m["sent"] for m in run.shards) == local.report.sent > 0
    on_ray = list(ray_passes.joined(run, output))
    assert written(on_ray, tmp_path / "r.json", "alpaca") == written(local.records, tmp_path / "l.json", "alpaca")
    per_process = loads_by_process(loads)
    assert 1 <= len(per_process) <= 2 and set(per_process.values()) == {1}, per_process


def test_gpus_the_cluster_lacks_are_one_clear_error(loads, pool):
    from longsift.errors import UsageError

    _, shards, model = pool
    with pytest.raises(UsageError, match=r"--ray-gpus-per-worker 1: the Ray cluster has 0 GPU\(s\)"):
        select(shards, method="ifd", k=5, model=str(model), executor="ray", ray_gpus_per_worker=1)


def test_vllm_on_ray_without_vllm_is_refused_in_one_line(pool, tmp_path, cli):
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here: the refusal is for machines without it")
    _, shards, model = pool
    result = cli("score", str(shards), "-o", str(tmp_path / "o.json"), "--backend", "vllm", "--model", str(model),
                 "--executor", "ray", check=False, env=ENV)  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: --backend vllm --executor ray needs the 'vllm' package: pip install 'longsift[vllm]' (or pip install "
        "vllm)"
    ]
    assert not (tmp_path / "o.json").exists()
