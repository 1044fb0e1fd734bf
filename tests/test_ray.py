"""--executor ray: select (every unit), stats and an LLM scoring pass on the public pool split into shards give
what the local executor gives on the whole pool; a driver killed mid-pass resumes without redoing a finished
shard or paying again for an answer. Needs `pip install '.[ray]'` (CI: its own step; `pytest -m ray`)."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from longsift import formats
from longsift.select import select
from longsift.select.stats import stats

pytestmark = pytest.mark.ray
from ray_cluster import ENV, local_cluster, write_shards, written  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    yield from local_cluster()


@pytest.fixture(scope="module")
def pool_lines(alpaca_pool: Path) -> list[bytes]:
    with gzip.open(alpaca_pool, "rb") as handle:
        return handle.read().splitlines(keepends=True)


@pytest.fixture(scope="module")
def split_pool(pool_lines: list[bytes], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The pool as one file and as 4 shards (one gzipped, one with a broken line: quarantined by shard:line)."""
    folder = tmp_path_factory.mktemp("shards")
    lines = pool_lines[:5000] + [b"{broken\n"] + pool_lines[5000:]
    whole = folder / "pool.jsonl"
    whole.write_bytes(b"".join(lines))
    return whole, write_shards(lines, folder, gzipped=2)


@pytest.fixture(scope="module")
def bpe_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    corpus = ["the quick brown fox jumps over the lazy dog", "long responses are more helpful", "hello world"] * 50
    tokenizer.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<s>"]))
    folder = tmp_path_factory.mktemp("bpe")
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>", bos_token="<s>").save_pretrained(folder)
    return folder


@pytest.mark.parametrize(("method", "by"), [("longest", "chars"), ("longest", "words"), ("longest", "nltk"),
                                            ("longest", "tokens"), ("random", "chars")])  # fmt: skip
def test_select_on_ray_is_the_local_selection(local_ray, split_pool, bpe_tokenizer, tmp_path, method, by):
    whole, shards = split_pool
    tokenizer = str(bpe_tokenizer) if by == "tokens" else None
    options = {"k": 700, "method": method, "by": by, "tokenizer": tokenizer, "seed": 3, "min_response_length": 2}
    local = select(whole, quarantine=tmp_path / "local.q.jsonl", **options)
    on_ray = select(shards, executor="ray", workers=2, quarantine=tmp_path / "ray.q.jsonl", **options)
    for fmt in ("fastchat", "alpaca"):
        assert written(on_ray.examples, tmp_path / f"r.{fmt}", fmt) == written(
            local.examples, tmp_path / f"l.{fmt}", fmt
        )
    assert on_ray.lengths == local.lengths
    a, b = on_ray.summary, local.summary
    assert (a.rows_read, a.rows_kept, a.rows_quarantined, a.selected, a.cutoff_length) == (
        b.rows_read, b.rows_kept, b.rows_quarantined, b.selected, b.cutoff_length)  # fmt: skip
    assert a.rows_read == a.rows_kept + a.rows_quarantined == len(whole.read_bytes().splitlines())
    # every rejection as the local run names it, at its shard and its line there (shards of `size` lines)
    size = len(whole.read_bytes().splitlines()) // 4 + 1
    local_q = [orjson.loads(line) for line in (tmp_path / "local.q.jsonl").read_bytes().splitlines()]
    ray_q = [orjson.loads(line) for line in (tmp_path / "ray.q.jsonl").read_bytes().splitlines()]
    assert len(local_q) == len(ray_q) == a.rows_quarantined >= 11  # the pool's own bad rows and the broken line
    for mine, theirs in zip(ray_q, local_q, strict=True):
        shard = (theirs["line"] - 1) // size
        assert Path(mine["source"]).name.startswith(f"part-{shard}.")
        assert (mine["line"], mine["reason"]) == ((theirs["line"] - 1) % size + 1, theirs["reason"])


def test_stats_on_ray_are_the_local_stats(local_ray, split_pool):
    from longsift.exec import ray_select

    whole, shards = split_pool
    local = stats(whole, ["chars", "nltk"]).to_dict()
    on_ray = ray_select.stats(shards, ["chars", "nltk"], workers=2).to_dict()
    assert {k: v for k, v in on_ray.items() if k != "source"} == {k: v for k, v in local.items() if k != "source"}


def test_parquet_shards_by_glob_list_and_file_url(local_ray, split_pool, tmp_path):
    whole, shards = split_pool
    lines = whole.read_bytes().splitlines(keepends=True)
    good = [line for line in lines if line.startswith(b'{"')]
    clean = tmp_path / "clean.jsonl"
    clean.write_bytes(b"".join(good))
    import pyarrow as pa
    import pyarrow.parquet as pq

    records = [orjson.loads(line) for line in good]  # Alpaca columns, as a lab's own Parquet would hold them
    (tmp_path / "pq").mkdir()
    for i in range(3):
        pq.write_table(pa.Table.from_pylist(records[i * 7000 : (i + 1) * 7000]), tmp_path / "pq" / f"p{i}.parquet")
    local = select(clean, k=300, by="words")
    expected = written(local.examples, tmp_path / "l.json", "fastchat")
    listed = [str(tmp_path / "pq" / f"p{i}.parquet") for i in range(3)]
    for source in (f"file://{tmp_path}/pq/*.parquet", listed):
        on_ray = select(source, k=300, by="words", executor="ray", workers=2)
        assert written(on_ray.examples, tmp_path / "r.json", "fastchat") == expected
        assert on_ray.summary.rows_read == len(good)


def test_dedup_on_ray_is_refused_in_one_line(local_ray, split_pool, tmp_path, cli):
    _, shards = split_pool
    result = cli("select", str(shards), "-o", str(tmp_path / "o.json"), "--dedup", "--executor", "ray", check=False,
                 env=ENV)  # fmt: skip
    assert result.returncode == 2 and "error: --dedup needs the whole pool" in result.stderr
    assert "Traceback" not in result.stderr


# --- an LLM pass on a cluster of a head and a worker node (ray start), killed and resumed ----------------------


def reply(request) -> str:
    import hashlib

    return f"{int(hashlib.sha256(request.prompt.encode()).hexdigest(), 16) % 6}\nas rated"


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory: pytest.TempPathFactory):
    """`ray start --head` and `ray start --address` (a second node) on localhost; stopped by their process groups."""
    port = 6000 + os.getpid() % 2000
    env = {**os.environ, **ENV}
    bin_dir = Path(sys.executable).parent
    logs = tmp_path_factory.mktemp("ray-logs")
    started = []
    for args in (["--head", f"--port={port}", "--include-dashboard=false"], [f"--address=127.0.0.1:{port}"]):
        log = (logs / f"{len(started)}.log").open("wb")
        started.append(subprocess.Popen([str(bin_dir / "ray"), "start", "--block", "--num-cpus=1",
                                         "--disable-usage-stats", *args], env=env, stdout=log, stderr=log,
                                        start_new_session=True))  # fmt: skip
        time.sleep(8 if not started[1:] else 0)
    probe = "import ray; ray.init(address='127.0.0.1:%d'); print(len([n for n in ray.nodes() if n['Alive']]))"
    for _ in range(60):
        out = subprocess.run([sys.executable, "-c", probe % port], env=env, capture_output=True, text=True)
        if out.stdout.strip() == "2":
            break
        time.sleep(2)
    else:
        raise AssertionError("the two-node cluster did not come up: " + "".join(p.read_text() for p in logs.iterdir()))
    yield f"127.0.0.1:{port}"
    # `ray start --block` stops its node gracefully on SIGTERM (~36 s for both here); what is left after a few
    # seconds is killed with the node's whole process group, which nothing after this module uses.
    for process in reversed(started):
        os.killpg(process.pid, signal.SIGTERM)
    for process in reversed(started):
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def score_argv(source: Path, output: str, base_url: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "longsift", "score", str(source), "-o", output, "--model", "m", "--base-url",
            base_url, "--cache", output + ".sqlite", "--no-progress", "--output-format", "alpaca", *extra]  # fmt: skip


def test_score_on_two_nodes_is_local_and_a_killed_driver_resumes_paying_nothing_twice(two_nodes, pool_lines, tmp_path):
    from longsift.llm.server import LocalChatServer

    shards = tmp_path / "shards"
    shards.mkdir()
    lines = pool_lines[:96]
    for i in range(6):
        (shards / f"part-{i}.jsonl").write_bytes(b"".join(lines[i * 16 : (i + 1) * 16]))
    (tmp_path / "all.jsonl").write_bytes(b"".join(lines))
    env = {**os.environ, **ENV}
    with LocalChatServer(reply, latency=0.15) as server:
        ray_args = ("--executor", "ray", "--ray-address", two_nodes, "--concurrency", "2")
        subprocess.run(score_argv(tmp_path / "all.jsonl", "local.json", server.base_url), cwd=tmp_path, env=env,
                       check=True, capture_output=True)  # fmt: skip
        local_requests = len(server.log)
        dry = subprocess.run(score_argv(shards, "ray.json", server.base_url, *ray_args, "--dry-run"), cwd=tmp_path,
                             env=env, capture_output=True, text=True)  # fmt: skip
        assert dry.returncode == 0, dry.stderr
        assert "shards:         6 to run" in dry.stderr and "rows:           96" in dry.stderr
        assert len(server.log) == local_requests and not (tmp_path / "ray.json").exists()
        log = (tmp_path / "driver.log").open("wb")
        driver = subprocess.Popen(score_argv(shards, "ray.json", server.base_url, *ray_args), cwd=tmp_path, env=env,
                                  stdout=log, stderr=log)  # fmt: skip
        work = tmp_path / "ray.shards"
        deadline = time.time() + 240
        while len(list(work.glob("*.done.json"))) < 2 and driver.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert driver.poll() is None, "the driver ended before the kill: " + (tmp_path / "driver.log").read_text()
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        killed_at = time.time()
        done = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in work.glob("part-*")
                if p.with_name(p.name.split(".")[0] + ".done.json").exists()}  # fmt: skip
        assert 0 < len(done) < 12, "the kill did not land mid-job"
        answered_before = cached_prompts(tmp_path / "ray.json.sqlite")
        sent_before = len(server.log)
        time.sleep(1)
        rerun = subprocess.run(score_argv(shards, "ray.json", server.base_url, *ray_args), cwd=tmp_path, env=env,
                               capture_output=True, text=True)  # fmt: skip
        assert rerun.returncode == 0, rerun.stderr
        after = server.log.entries()[sent_before:]
    assert f"{len(done) // 2} already done" in rerun.stderr
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in work.glob("part-*") if p.name in done} == done
    again = [e.prompt for e in after if e.request.arrived > killed_at and e.prompt in answered_before]
    assert not again, f"{len(again)} answered requests were sent again"
    assert len({e.prompt for e in server.log.entries()[local_requests:]}) == 96
    assert (tmp_path / "ray.json").read_bytes() == (tmp_path / "local.json").read_bytes()


def cached_prompts(cache: Path) -> set[str]:
    from longsift.llm.cache import Cache

    store = Cache(cache)
    try:
        return {entry.request["messages"][-1]["content"] for entry in store.entries("ok")}
    finally:
        store.close()


def test_convert_on_ray_writes_the_local_conversion(local_ray, split_pool, tmp_path):
    from longsift.exec import ray_select
    from longsift.formats.load import Quarantine, load_all

    whole, shards = split_pool
    local, local_report = load_all(whole)
    records, report = ray_select.convert_records(shards, format=None, limits=formats.rows.Limits(), address=None,
                                                 quarantine=Quarantine(tmp_path / "q.jsonl"))  # fmt: skip
    assert written(records, tmp_path / "r.json", "alpaca") == written(local, tmp_path / "l.json", "alpaca")
    assert (report.read, report.kept, report.quarantined) == (local_report.read, local_report.kept,
                                                              local_report.quarantined)  # fmt: skip
    assert len((tmp_path / "q.jsonl").read_bytes().splitlines()) == report.quarantined


def refine_reply(request) -> str:
    return f"[Better Answer] A clearer answer ({len(request.prompt) % 7}). [End]"


def test_cli_stats_and_refine_on_two_nodes_are_the_local_ones(two_nodes, pool_lines, tmp_path):
    """The README's `stats ... --executor ray` and `refine ... --executor ray` commands, as a user runs them."""
    from longsift.llm.server import LocalChatServer

    shards = tmp_path / "shards"
    shards.mkdir()
    lines = pool_lines[:48]
    for i in range(3):
        (shards / f"part-{i}.jsonl").write_bytes(b"".join(lines[i * 16 : (i + 1) * 16]))
    (tmp_path / "all.jsonl").write_bytes(b"".join(lines))
    env = {**os.environ, **ENV}
    ray_args = ("--executor", "ray", "--ray-address", two_nodes)

    def longsift(*args: str) -> None:
        done = subprocess.run([sys.executable, "-m", "longsift", *args], cwd=tmp_path, env=env, capture_output=True,
                              text=True)  # fmt: skip
        assert done.returncode == 0, done.stderr

    longsift("stats", "all.jsonl", "--by", "chars", "--by", "nltk", "-o", "stats-local")
    longsift("stats", "shards", "--by", "chars", "--by", "nltk", "-o", "stats-ray", *ray_args)
    local, on_ray = (
        orjson.loads((tmp_path / name / "stats.json").read_bytes()) for name in ("stats-local", "stats-ray")
    )
    assert {k: v for k, v in on_ray.items() if k != "source"} == {k: v for k, v in local.items() if k != "source"}
    with LocalChatServer(refine_reply) as server:
        common = ("--model", "m", "--base-url", server.base_url, "--no-progress", "--output-format", "alpaca")
        longsift("refine", "all.jsonl", "-o", "local.json", "--cache", "local.sqlite", *common)
        longsift("refine", "shards", "-o", "ray.json", "--cache", "ray.sqlite", *common, *ray_args)
    assert (tmp_path / "ray.json").read_bytes() == (tmp_path / "local.json").read_bytes()
