"""How closely the LLM engine keeps to the waits it is told, measured side by side against the local server.

The tests assert the behaviour (a Retry-After is never cut short; a request times out on the client's clock and is
retried); how long each took on this machine is measured here, never asserted in a unit test:
  * Retry-After: 1 and retry-after-ms: 300: the gap between the two attempts over the wait asked (targets 1.6
    and 2.67: the bounds the unit tests used to assert);
  * a 0.1 s per-request timeout, two attempts, against a server answering after 0.6 s: the run's time over the
    server's latency (target < 1: the client is done before the server answers once).

Run: python bench/llm_timing.py [--repeats 5]
"""

from __future__ import annotations

import os
import sys

# bench/select.py (named by issue 2) shadows the standard library's `select` for scripts in this folder.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

import argparse
import statistics
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from longsift.llm import ChatRequest, LLMSettings, run_requests  # noqa: E402
from longsift.llm.server import LocalChatServer, ScriptedError  # noqa: E402


def settings(server: LocalChatServer, **overrides) -> LLMSettings:
    values = dict(
        base_url=server.base_url, model="m", timeout=5.0, max_attempts=3, backoff_base=0.005, backoff_max=0.05,
        no_cache=True, progress=False,
    )  # fmt: skip
    return LLMSettings(**{**values, **overrides})


def retry_gap(header: dict[str, str]) -> float:
    """Seconds between the first attempt (answered 429 with `header`) and the second."""

    def responder(request):
        if request.attempt == 1:
            raise ScriptedError(429, "slow down", header)
        return "fine"

    with LocalChatServer(responder) as server:
        run_requests([ChatRequest.of("x")], settings(server))
        first, second = server.log.entries()
    return second.request.arrived - first.request.arrived


def timeout_run(latency: float = 0.6, timeout: float = 0.1) -> float:
    """Seconds the engine takes to give up on one request (two attempts) that the server answers after `latency`."""
    with LocalChatServer(latency=latency) as server:
        started = time.monotonic()
        run_requests([ChatRequest.of("x")], settings(server, timeout=timeout, max_attempts=2))
        return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    cases = [
        ("Retry-After: 1", 1.0, 1.6, lambda: retry_gap({"Retry-After": "1"})),
        ("retry-after-ms: 300", 0.3, 2.67, lambda: retry_gap({"retry-after-ms": "300"})),
        ("timeout 0.1 s x 2 vs latency 0.6 s", 0.6, 1.0, timeout_run),
    ]
    print(f"{'case':38} {'median s':>9} {'ratio':>7} {'target':>8}")
    for name, expected, target, measure in cases:
        median = statistics.median(measure() for _ in range(args.repeats))
        ratio = median / expected
        verdict = "ok" if ratio < target else "MISSED"
        print(f"{name:38} {median:9.3f} {ratio:7.2f} {'< ' + str(target):>8} {verdict}")


if __name__ == "__main__":
    main()
