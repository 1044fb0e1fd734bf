"""Model passes on Ray: `select --method ifd` and a local-model `score` over the public pool split into shards give
the local executor's output byte for byte, each actor loading its model once (counted on the workers by
tests/ray_loads/sitecustomize.py); what a cluster cannot run is refused in one line. Needs the ray extra."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from longsift.formats.load import load
from longsift.select import select

pytestmark = pytest.mark.ray
from ray_cluster import ENV, REPO, local_cluster, pool_prefix, written  # noqa: E402

HERE = Path(__file__).resolve().parent
ROWS = 320
MAX_LENGTH = 160
# the workers import the counting sitecustomize (tests/ray_loads) and this checkout, and download nothing
WORKER_ENV = {"PYTHONPATH": os.pathsep.join([str(HERE / "ray_loads"), str(REPO)]), "HF_HUB_OFFLINE": "1",
              "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}  # fmt: skip


def scan_log(loads_log: Path) -> Path:
    """Where the workers log each shard they scan (tests/ray_loads/sitecustomize.py)."""
    return loads_log.with_name("scans.txt")


def scans(log: Path) -> list[str]:
    """The shards scanned, one entry a scan, by file name."""
    return [Path(line.split(" ", 1)[1]).name for line in log.read_text().splitlines()] if log.exists() else []


@pytest.fixture(scope="module")
def loads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local Ray cluster of 2 CPUs whose workers log each model load to the returned file."""
    log = tmp_path_factory.mktemp("loads") / "loads.txt"
    env = {**WORKER_ENV, "LONGSIFT_TEST_LOADS": str(log), "LONGSIFT_TEST_SCANS": str(scan_log(log))}
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

    folder = tmp_path_factory.mktemp("ifd-shards")
    whole, shards = pool_prefix(alpaca_pool, ROWS, 100, folder, gzipped=1)
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


# --- select on Ray: each shard committed as it completes; a rerun scans only what is not done ------------------


def concatenated(folder: Path) -> bytes:
    shards = sorted(folder.iterdir())
    return b"".join(gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes() for p in shards)


def test_select_on_ray_commits_each_shard_and_a_rerun_scans_only_what_changed(loads, pool, tmp_path):
    import shutil

    _, original, _ = pool
    shards = tmp_path / "shards"
    shutil.copytree(original, shards)
    work, log = tmp_path / "run", scan_log(loads)
    options = {"k": 60, "by": "words", "executor": "ray", "workers": 2, "run_folder": work}

    def run(name: str, **changed):
        before = len(scans(log))
        chosen = select(shards, quarantine=tmp_path / f"{name}.q.jsonl", **{**options, **changed})
        return chosen, sorted(scans(log)[before:])

    first, scanned = run("first")
    every = sorted(p.name for p in shards.iterdir())
    assert scanned == every and len(list(work.glob("part-*.done.json"))) == 4
    markers = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in work.iterdir()}
    again, scanned = run("again")
    assert scanned == [], "a rerun scanned committed shards"
    assert {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in work.iterdir()} == markers
    assert written(again.examples, tmp_path / "a.json", "alpaca") == written(first.examples, tmp_path / "f.json",
                                                                             "alpaca")  # fmt: skip
    assert (tmp_path / "again.q.jsonl").read_bytes() == (tmp_path / "first.q.jsonl").read_bytes()
    assert (again.summary.rows_read, again.summary.rows_quarantined) == (first.summary.rows_read, 1)
    _, scanned = run("other-k", k=61)  # another option: every shard again
    assert scanned == every
    last = shards / "part-3.jsonl"
    last.write_bytes(b"".join(last.read_bytes().splitlines(keepends=True)[:-1]))  # another input: that shard again
    changed, scanned = run("changed", k=61)
    assert scanned == ["part-3.jsonl"]
    (tmp_path / "all.jsonl").write_bytes(concatenated(shards))
    local = select(tmp_path / "all.jsonl", k=61, by="words")
    assert written(changed.examples, tmp_path / "c.json", "fastchat") == written(local.examples, tmp_path / "l.json",
                                                                                 "fastchat")  # fmt: skip


def test_a_killed_ifd_select_on_ray_resumes_scanning_no_committed_shard(pool, tmp_path):
    """The driver of `select --method ifd --executor ray` SIGKILLed once some shards are committed: the rerun scans
    only the others (counted on the workers) and writes the local executor's output byte for byte."""
    import contextlib
    import signal
    import subprocess
    import sys
    import time

    whole, _, model = pool
    lines = whole.read_bytes().splitlines(keepends=True)
    shards = tmp_path / "shards"
    shards.mkdir()
    for i in range(8):
        (shards / f"part-{i}.jsonl").write_bytes(b"".join(lines[i * 41 : (i + 1) * 41]))
    log = tmp_path / "scans.txt"
    env = {**os.environ, **ENV, **WORKER_ENV, "LONGSIFT_TEST_SCANS": str(log)}
    argv = [sys.executable, "-m", "longsift", "select", "--method", "ifd", "--model", str(model), "-k", "60",
            "--ifd-max-length", str(MAX_LENGTH), "--output-format", "alpaca"]  # fmt: skip
    ray_argv = [*argv, str(shards), "-o", "ray.json", "--executor", "ray", "--workers", "1"]
    subprocess.run([*argv, str(whole), "-o", "local.json"], cwd=tmp_path, env=env, check=True, capture_output=True)
    with (tmp_path / "driver.log").open("wb") as out:
        driver = subprocess.Popen(ray_argv, cwd=tmp_path, env=env, stdout=out, stderr=out, start_new_session=True)
    work = tmp_path / "ray.shards"
    deadline = time.time() + 300
    while not list(work.glob("*.done.json")) and driver.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert driver.poll() is None, "the driver ended before the kill: " + (tmp_path / "driver.log").read_text()
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(driver.pid, signal.SIGKILL)  # what the driver started (its local cluster), if still there
    done = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes()) for p in work.glob("*.done.json")}
    assert 0 < len(done) < 8, "the kill did not land mid-job"
    before = len(scans(log))
    rerun = subprocess.run(ray_argv, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(done)} already done" in rerun.stderr
    committed = {f"part-{int(name.split('.')[0].removeprefix('part-'))}.jsonl" for name in done}  # marker: index
    assert sorted(scans(log)[before:]) == sorted({f"part-{i}.jsonl" for i in range(8)} - committed)
    assert {p.name: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes()) for p in work.glob("*.done.json")
            if p.name in done} == done  # fmt: skip
    assert len(list(work.glob("*.done.json"))) == 8
    assert (tmp_path / "ray.json").read_bytes() == (tmp_path / "local.json").read_bytes()


def test_score_and_select_on_ray_keep_an_own_id_that_looks_like_a_row_number(loads, tmp_path):
    """A record's own id "0" at row 0 of its shard (row 2 of the pool) stays "0", as local keeps it; a record
    without an id is named by its pool row: one rule (exec/shard_ids.py rebased) for score, refine and select."""
    from longsift.exec import ray_passes
    from longsift.formats.load import load_all
    from longsift.llm.server import LocalChatServer
    from longsift.llm.settings import LLMSettings
    from longsift.refine.options import ScoreOptions

    rows = [b'{"instruction": "a", "input": "", "output": "x"}\n',
            b'{"instruction": "b", "input": "", "output": "yy"}\n',
            b'{"id": "0", "instruction": "c", "input": "", "output": "zzz"}\n',
            b'{"instruction": "d", "input": "", "output": "w"}\n']  # fmt: skip
    (tmp_path / "all.jsonl").write_bytes(b"".join(rows))
    shards = tmp_path / "shards"
    shards.mkdir()
    (shards / "part-0.jsonl").write_bytes(b"".join(rows[:2]))
    (shards / "part-1.jsonl").write_bytes(b"".join(rows[2:]))
    local = [(e.id, e.row) for e in load_all(tmp_path / "all.jsonl")[0]]
    assert local == [("0", 0), ("1", 1), ("0", 2), ("3", 3)]
    with LocalChatServer(lambda request: "5") as server:
        settings = LLMSettings(model="m", base_url=server.base_url, progress=False, cache=tmp_path / "c.sqlite")
        run = ray_passes.run_pass("score", shards, tmp_path / "ray.json", ScoreOptions(), settings, workers=2,
                                  say=lambda line: None)  # fmt: skip
    assert [(e.id, e.row) for e in ray_passes.joined(run, tmp_path / "ray.json")] == local
    assert [(e.id, e.row) for e in select(shards, executor="ray", workers=2).examples] == local
