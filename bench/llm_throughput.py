"""LLM engine throughput against the local OpenAI-protocol server at a fixed 200 ms latency.

Measured side by side in one run, against one server process (as a remote endpoint would be):
  * the engine at concurrency 32, cache on, as a stage runs it: target >= 0.8 x 32 / 0.2 s = 128 requests/s;
  * bare httpx at the same concurrency (no engine, no cache): what this machine allows right now, so the engine's
    own overhead is visible apart from CPU contention;
  * the paper's loop: one call on a persistent client, then time.sleep(1), serially. Only a few calls are run; its
    rate is extrapolated from their mean (every iteration does the same thing: one call plus one second).

Run: python bench/llm_throughput.py [--requests 640] [--repeats 3] [--serial-calls 3]
"""

from __future__ import annotations

import os
import sys

# bench/select.py (named by issue 2) shadows the standard library's `select` for scripts in this folder.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

import argparse
import asyncio
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from longsift.llm import ChatRequest, LLMSettings, Sampling, run_requests  # noqa: E402

LATENCY = 0.2
CONCURRENCY = 32


def start_server() -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "longsift.llm.server", "--latency", str(LATENCY)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    banner = process.stdout.readline() if process.stdout else ""
    return process, banner.split(" on ")[1].strip()


def body(prompt: str) -> dict[str, object]:
    return {"model": "bench", "messages": [{"role": "user", "content": prompt}], "max_tokens": 32}


def engine_rate(base_url: str, n: int, run: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        settings = LLMSettings(base_url=base_url, model="bench", concurrency=CONCURRENCY,
                               cache=Path(tmp) / "cache.sqlite", progress=False)  # fmt: skip
        requests = [ChatRequest.of(f"engine {run} request {i}", Sampling(max_tokens=32)) for i in range(n)]
        started = time.perf_counter()
        report = run_requests(requests, settings)
        elapsed = time.perf_counter() - started
    assert report.stats.ok == n, report.stats.summary()
    return n / elapsed


def bare_httpx_rate(base_url: str, n: int, run: int) -> float:
    async def go() -> float:
        clients = [httpx.AsyncClient(base_url=base_url) for _ in range(CONCURRENCY)]
        todo = list(range(n))

        async def worker(client: httpx.AsyncClient) -> None:
            while todo:
                i = todo.pop()
                response = await client.post("/chat/completions", content=orjson.dumps(body(f"bare {run} {i}")))
                response.raise_for_status()
                orjson.loads(response.content)

        started = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in clients))
        elapsed = time.perf_counter() - started
        for client in clients:
            await client.aclose()
        return n / elapsed

    return asyncio.run(go())


def paper_loop_seconds_per_call(base_url: str, calls: int) -> float:
    """The paper's script: one request at a time on one client, time.sleep(1) after each."""
    with httpx.Client(base_url=base_url) as client:
        started = time.perf_counter()
        for i in range(calls):
            client.post("/chat/completions", content=orjson.dumps(body(f"serial {i}"))).raise_for_status()
            time.sleep(1)
        return (time.perf_counter() - started) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=640)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--serial-calls", type=int, default=3)
    args = parser.parse_args()
    process, base_url = start_server()
    try:
        engine, bare = [], []
        for run in range(args.repeats):  # interleaved, so both see the same machine load
            engine.append(engine_rate(base_url, args.requests, run))
            bare.append(bare_httpx_rate(base_url, args.requests, run))
        per_call = paper_loop_seconds_per_call(base_url, args.serial_calls)
    finally:
        process.terminate()
        process.wait(10)
    target = 0.8 * CONCURRENCY / LATENCY
    rate, ceiling, serial = statistics.median(engine), statistics.median(bare), 1 / per_call
    load = os.getloadavg()[0]
    runs = {name: ", ".join(f"{r:.1f}" for r in rates) for name, rates in (("engine", engine), ("bare", bare))}
    verdict = "PASS" if rate >= target else "FAIL"
    lines = [
        f"server latency {LATENCY * 1000:.0f} ms, concurrency {CONCURRENCY}, {args.requests} requests x "
        f"{args.repeats} runs; {os.cpu_count()} CPUs, load average {load:.1f}",
        f"engine (cache on):  median {rate:.1f} req/s (runs {runs['engine']}); ideal {CONCURRENCY / LATENCY:.0f}, "
        f"target >= {target:.0f}: {verdict}",
        f"bare httpx:         median {ceiling:.1f} req/s (runs {runs['bare']}); engine / bare = {rate / ceiling:.2f}",
        f"paper loop (call + sleep 1 s; {args.serial_calls} calls measured, extrapolated): {per_call:.3f} s per call = "
        f"{serial:.3f} req/s, so {args.requests} requests would take {args.requests * per_call / 60:.1f} min",
    ]
    print("\n".join(lines))
    print(f"ratio engine / paper loop: {rate / serial:.0f}x")


if __name__ == "__main__":
    main()
