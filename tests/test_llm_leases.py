"""One payment per request across processes sharing one cache file (leases in the SQLite cache)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson

from longsift.llm.cache import Cache, Owner
from longsift.llm.server import LocalChatServer, ServedRequest
from longsift.llm.types import ChatRequest

REPO = Path(__file__).resolve().parents[1]


def reply(request: ServedRequest) -> str:
    return f"[Better Answer] Better: {request.prompt[-40:]} [End]"


def corpus(path: Path, n: int) -> Path:
    rows = [{"instruction": f"Explain thing {i}.", "input": "", "output": f"Thing {i} is a thing."} for i in range(n)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_two_refine_processes_on_one_cache_pay_each_request_once(tmp_path: Path) -> None:
    source = corpus(tmp_path / "in.jsonl", 60)
    cache = tmp_path / "shared.sqlite"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OPENAI_API_KEY": "sk-lease-test-0000"}
    with LocalChatServer(reply, latency=0.2, model="m") as server:
        args = ["refine", str(source), "--format", "messages", "--base-url", server.base_url, "--model", "m",
                "--cache", str(cache), "--concurrency", "4", "--no-progress"]  # fmt: skip
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "longsift", *args, "-o", str(tmp_path / f"out{i}.jsonl")],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            for i in range(2)
        ]
        results = [p.communicate(timeout=300) for p in procs]
        sent = Counter(e.request.key for e in server.log.entries())
    assert [p.returncode for p in procs] == [0, 0], results
    assert len(sent) == 60 and set(sent.values()) == {1}  # every distinct request paid once, in all
    outputs = [(tmp_path / f"out{i}.jsonl").read_bytes() for i in range(2)]
    assert outputs[0] == outputs[1]
    assert all(orjson.loads(line)["metadata"]["refine_status"] == "refined" for line in outputs[0].splitlines())
    summaries = [out.strip().splitlines()[-1] for out, _ in results]
    sent_by = [int(s.split(" calls sent")[0].rsplit(" ", 1)[-1]) for s in summaries]
    assert sum(sent_by) == 60 and min(sent_by) > 0  # both ran at once and shared the work
    with Cache(cache) as store:
        assert store.leases() == []  # every lease ended with its answer


def test_a_dead_owners_lease_is_taken_over_and_a_live_one_is_waited_for(tmp_path: Path) -> None:
    request = ChatRequest.of("x")
    with Cache(tmp_path / "c.sqlite") as cache:
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        ghost = Owner("ghost", Owner.new(30).host, int(dead.stdout), 30.0)  # its process has exited
        assert cache.claim("k", ghost, 0.0) == ("mine", None)
        me, other = Owner.new(30), Owner("other", Owner.new(30).host, os.getpid(), 30.0)  # a live pid
        assert cache.claim("k", me, time.time())[0] == "mine"  # the dead owner's lease is taken over at once
        assert cache.claim("k", other, time.time())[0] == "busy"
        since = time.time()
        cache.put_failed("k", "openai", "m", request, "HTTP 500: boom", 1)
        state, entry = cache.claim("k", other, since)
        assert state == "done" and entry is not None and entry.error == "HTTP 500: boom"  # the owner's outcome
        expired = Owner("late", "another-host", 1, 0.001)
        assert cache.claim("k2", expired, 0.0)[0] == "mine"
        time.sleep(0.01)
        assert cache.claim("k2", me, time.time())[0] == "mine"  # expired on another host: taken over
        cache.release(me)
        assert [lease[0] for lease in cache.leases()] == ["k"] or cache.leases() == []
