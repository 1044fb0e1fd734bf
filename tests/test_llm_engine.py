"""The LLM engine against a real local OpenAI-protocol server: faults, retries, Retry-After, limits, cost, cache."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from longsift.llm import Cache, ChatRequest, Completion, LLMSettings, Sampling, Usage, run_requests
from longsift.llm.backends.openai_compat import retry_after
from longsift.llm.server import Faults, LocalChatServer, ScriptedError


def settings_for(server: LocalChatServer, tmp_path: Path, **overrides) -> LLMSettings:
    values = dict(
        base_url=server.base_url, model="m", concurrency=8, timeout=5.0, max_attempts=3, backoff_base=0.005,
        backoff_max=0.05, cache=tmp_path / "cache.sqlite", progress=False,
    )  # fmt: skip
    return LLMSettings(**{**values, **overrides})


def settle(server: LocalChatServer, quiet: float = 0.5) -> int:
    """Wait until the log stops growing: requests the client gave up on (timeouts) are logged when the server
    finishes them. (One the client abandoned before the server read it is never logged: the server never
    saw it.)"""
    while True:
        count = len(server.log)
        time.sleep(quiet)
        if len(server.log) == count:
            return count


def test_fault_injected_run_answers_or_lists_every_request_and_rerun_retries_only_failures(tmp_path):
    faults = Faults.spread(0.30, timeout_sleep=0.45, retry_after=0.005, seed=3)
    with LocalChatServer(latency=0.001, faults=faults) as server:
        settings = settings_for(server, tmp_path, concurrency=32, timeout=0.25, max_attempts=2)
        prompts = [f"question {i}" for i in range(1000)]
        requests = [ChatRequest.of(p) for p in prompts]

        first = run_requests(requests, settings)
        assert len(first) == 1000 and first.stats.ok + first.stats.failed == 1000 and first.stats.skipped == 0
        answered = {p for p, r in zip(prompts, first, strict=True) if r.ok}
        failed = {p for p, r in zip(prompts, first, strict=True) if not r.ok}
        for prompt, result in zip(prompts, first, strict=True):
            if result.ok:
                assert result.text == f"echo: {prompt}"
            else:
                assert result.attempts == 2 and result.error
        reasons = Counter(r.error.split(":")[0].split(" (")[0] for r in first.failures)
        assert {"HTTP 429", "HTTP 500", "timeout after 0.25s", "malformed response"} <= set(reasons)
        assert len(failed) > 20  # ~0.3^2 of 1000; a loaded machine only adds client timeouts
        before = settle(server)
        assert server.log.outcomes().keys() == {"ok", "429", "500", "timeout", "malformed"}
        assert_failures_match_the_server(prompts, first, server)

        second = run_requests(requests, settings)
        settle(server)
        resent = Counter(e.prompt for e in server.log.entries()[before:])
        assert not set(resent) & answered  # no answered request costs a new call
        assert set(resent) <= failed  # failures are what is sent (one abandoned unread is never logged) ...
        retried = [r for p, r in zip(prompts, second, strict=True) if p in failed]
        assert all(r.attempts >= 3 and not r.cached for r in retried)  # ... all of them (attempts add up)
        assert second.stats.cached == len(answered)
        assert all(r.cached for p, r in zip(prompts, second, strict=True) if p in answered)

        # --retry-failed: only the failures still recorded are sent; never-attempted requests are left alone
        still_failed = {p for p, r in zip(prompts, second, strict=True) if not r.ok}
        before = len(server.log)
        extra = [ChatRequest.of(f"never asked {i}") for i in range(5)]
        third = run_requests(requests + extra, settings_for(server, tmp_path, retry_failed=True, timeout=0.25))
        settle(server)
        assert {e.prompt for e in server.log.entries()[before:]} <= still_failed
        assert third.stats.sent >= len(still_failed)
        assert [r.status for r in third.results[1000:]] == ["skipped"] * 5


SERVER_OUTCOME = {"HTTP 429": "429", "HTTP 500": "500", "malformed response": "malformed"}


def assert_failures_match_the_server(prompts, report, server) -> None:
    """Each request failed exactly when the server faulted every attempt it answered: an answer the server gave
    that the client reports as a timeout is the only slack (a slow machine), so no bound on time is needed."""
    seen: dict[str, list[str]] = {}
    for entry in sorted(server.log.entries(), key=lambda e: e.request.attempt):  # logged when done, not in order
        seen.setdefault(entry.prompt, []).append(entry.outcome)
    for prompt, result in zip(prompts, report, strict=True):
        outcomes = seen.get(prompt, [])  # an attempt abandoned before the server read it is never logged
        if len(outcomes) == 2 and "ok" not in outcomes:
            assert not result.ok  # faulted twice: given up after max_attempts
        if result.ok:
            assert outcomes[-1] == "ok"
            continue
        reason = result.error.split(":")[0].split(" (")[0]
        if reason in SERVER_OUTCOME:  # the last answer was this fault, sent by the server, not inferred
            assert outcomes[-1] == SERVER_OUTCOME[reason]


def test_retry_after_is_honoured(tmp_path):
    def responder(request):
        if request.attempt == 1:
            raise ScriptedError(429, "slow down", {"Retry-After": "1"})
        return "fine"

    with LocalChatServer(responder) as server:
        report = run_requests([ChatRequest.of("x")], settings_for(server, tmp_path))
        first, second = server.log.entries()
    assert report[0].text == "fine" and report[0].attempts == 2
    assert second.request.arrived - first.request.arrived >= 1.0  # backoff alone would be ~5 ms (bench/llm_timing.py)


def test_retry_after_ms_is_honoured(tmp_path):
    def responder(request):
        if request.attempt == 1:
            raise ScriptedError(503, "busy", {"retry-after-ms": "300"})
        return "fine"

    with LocalChatServer(responder) as server:
        run_requests([ChatRequest.of("x")], settings_for(server, tmp_path))
        first, second = server.log.entries()
    assert second.request.arrived - first.request.arrived >= 0.3  # how close to 0.3 s: bench/llm_timing.py


def test_retry_after_header_forms():
    assert retry_after(httpx.Headers({"Retry-After": "2"})) == 2.0
    assert retry_after(httpx.Headers({"retry-after-ms": "250", "Retry-After": "9"})) == 0.25
    date = httpx.Headers({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})  # in the past: no wait
    assert retry_after(date) == 0.0
    assert retry_after(httpx.Headers({})) is None


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_requests_that_cannot_succeed_are_not_retried(tmp_path, status):
    def responder(request):
        raise ScriptedError(status, f"no ({status})")

    with LocalChatServer(responder) as server:
        report = run_requests([ChatRequest.of("x")], settings_for(server, tmp_path, max_attempts=5))
        assert len(server.log) == 1
    assert report[0].status == "failed" and report[0].error.startswith(f"HTTP {status}: no ({status})")
    assert report[0].attempts == 1


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503])
def test_transient_statuses_are_retried_up_to_max_attempts(tmp_path, status):
    def responder(request):
        raise ScriptedError(status, "try later")

    with LocalChatServer(responder) as server:
        report = run_requests([ChatRequest.of("x")], settings_for(server, tmp_path, max_attempts=4))
        assert len(server.log) == 4
    assert report[0].status == "failed" and report[0].attempts == 4 and f"HTTP {status}" in report[0].error


def test_garbage_and_malformed_bodies_are_retried(tmp_path):
    for faults in (Faults(rate_garbage=1.0), Faults(rate_malformed=1.0)):
        with LocalChatServer(faults=faults) as server:
            report = run_requests([ChatRequest.of("x")], settings_for(server, tmp_path, max_attempts=3, no_cache=True))
            assert len(server.log) == 3
        assert report[0].error.startswith("malformed response")


def test_per_request_timeout(tmp_path):
    with LocalChatServer(latency=0.6) as server:
        report = run_requests([ChatRequest.of("x")], settings_for(server, tmp_path, timeout=0.1, max_attempts=2))
        settle(server)
        served = server.log.entries()
    # the client gave up on both attempts itself; the server answered each one later (how much sooner the client
    # is done than the server's 0.6 s: bench/llm_timing.py)
    assert report[0].error == "timeout after 0.1s" and report[0].attempts == 2
    assert [e.outcome for e in served] == ["ok", "ok"]


def test_connection_errors_are_retried_then_reported(tmp_path):
    with LocalChatServer() as server:
        url = server.base_url
    settings = LLMSettings(base_url=url, model="m", max_attempts=3, backoff_base=0.001, no_cache=True, progress=False)
    report = run_requests([ChatRequest.of("x")], settings)
    assert report[0].status == "failed" and report[0].attempts == 3
    assert report[0].error.startswith("connection error")


def test_concurrency_is_bounded_and_used(tmp_path):
    with LocalChatServer(latency=0.05) as server:
        run_requests([ChatRequest.of(f"q{i}") for i in range(40)], settings_for(server, tmp_path, concurrency=5))
        entries = server.log.entries()
    events = sorted([(e.request.arrived, 1) for e in entries] + [(e.finished, -1) for e in entries])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    assert peak == 5


def test_requests_per_minute_limit(tmp_path):
    with LocalChatServer() as server:
        run_requests([ChatRequest.of(f"q{i}") for i in range(25)], settings_for(server, tmp_path, rpm=600))
        arrivals = sorted(e.request.arrived for e in server.log)
    # 600/min = 10/s with at most one second's worth at once: 10 at once, then 15 more at 10/s
    assert arrivals[-1] - arrivals[0] >= 1.3
    assert sum(a - arrivals[0] < 0.5 for a in arrivals) <= 16


def test_tokens_per_minute_limit_uses_reported_usage(tmp_path):
    def responder(request):
        return Completion("ok", "stop", Usage(50, 150))  # 200 tokens a call, more than estimated

    with LocalChatServer(responder) as server:
        settings = settings_for(server, tmp_path, tpm=24_000, concurrency=1)  # 400 tokens/s
        run_requests([ChatRequest.of(f"q{i}", Sampling(max_tokens=100)) for i in range(6)], settings)
        arrivals = sorted(e.request.arrived for e in server.log)
    assert arrivals[-1] - arrivals[0] >= 1.4  # ~2 calls/s once the first second's allowance is spent


def test_identical_requests_are_sent_once(tmp_path):
    with LocalChatServer() as server:
        report = run_requests([ChatRequest.of("same")] * 3 + [ChatRequest.of("other")], settings_for(server, tmp_path))
        assert len(server.log) == 2
    assert (
        report.stats.requests == 4 and report.stats.unique == 2 and [r.text for r in report][:3] == ["echo: same"] * 3
    )


def test_cache_key_covers_model_and_sampling_but_not_the_endpoint(tmp_path):
    with LocalChatServer() as one, LocalChatServer() as two:
        request = ChatRequest.of("x", Sampling(temperature=0, max_tokens=5))
        run_requests([request], settings_for(one, tmp_path))
        run_requests([request], settings_for(two, tmp_path))  # same model elsewhere: served from cache
        assert len(two.log) == 0
        run_requests([ChatRequest.of("x", Sampling(temperature=0.0, max_tokens=5))], settings_for(two, tmp_path))
        assert len(two.log) == 0  # 0 and 0.0 are the same temperature
        run_requests([ChatRequest.of("x", Sampling(max_tokens=6))], settings_for(two, tmp_path))
        run_requests([ChatRequest.of("x", Sampling(max_tokens=5, seed=1))], settings_for(two, tmp_path))
        run_requests([request], settings_for(two, tmp_path, model="other"))
        assert len(two.log) == 3


def test_usage_and_cost_are_recorded_and_cached_calls_cost_nothing_new(tmp_path):
    prices = tmp_path / "prices.yaml"
    prices.write_text("models:\n  m: {input: 1.0, output: 2.0}\n")

    def responder(request):
        return Completion("answer", "stop", Usage(1000, 500))

    with LocalChatServer(responder) as server:
        requests = [ChatRequest.of(f"q{i}") for i in range(4)]
        first = run_requests(requests, settings_for(server, tmp_path, prices=prices))
        again = run_requests(requests, settings_for(server, tmp_path, prices=prices))
        unpriced = run_requests(requests, settings_for(server, tmp_path, model="unlisted-model"))
    assert [r.cost for r in first] == [pytest.approx(0.002)] * 4
    assert first.stats.cost == pytest.approx(0.008) and first.stats.prompt_tokens == 4000
    assert again.stats.cost == 0 and again.stats.sent == 0 and all(r.cost == pytest.approx(0.002) for r in again)
    assert unpriced.stats.cost is None and all(r.cost is None for r in unpriced)
    assert "spent unknown price" in unpriced.stats.summary()
    with Cache(tmp_path / "cache.sqlite") as cache:
        stats = cache.stats()
    priced = next(g for g in stats["groups"] if g["model"] == "m")
    assert priced["cost"] == pytest.approx(0.008) and priced["completion_tokens"] == 2000


def test_n_choices_and_finish_reason_are_kept(tmp_path):
    def responder(request):
        n = request.body.get("n", 1)
        return Completion("a0", "stop", Usage(3, 4), tuple(f"a{i}" for i in range(n)))

    with LocalChatServer(responder) as server:
        report = run_requests([ChatRequest.of("x", Sampling(n=3))], settings_for(server, tmp_path))
        cached = run_requests([ChatRequest.of("x", Sampling(n=3))], settings_for(server, tmp_path))
    for result in (report[0], cached[0]):
        assert result.completion.choices == ("a0", "a1", "a2") and result.completion.finish_reason == "stop"


def test_a_429_with_retry_after_holds_back_every_request_not_only_its_own(tmp_path):
    def responder(request):
        if request.prompt == "first" and request.attempt == 1:
            raise ScriptedError(429, "slow down", {"Retry-After": "0.6"})
        return "ok"

    with LocalChatServer(responder) as server:
        requests = [ChatRequest.of("first"), *(ChatRequest.of(f"later {i}") for i in range(4))]
        run_requests(requests, settings_for(server, tmp_path, concurrency=2))
        entries = server.log.entries()
    limited = next(e for e in entries if e.outcome == "http 429")
    # the other worker may have sent one request before the client read the 429; the rest waited out the pause
    gaps = sorted(e.request.arrived - limited.finished for e in entries if e.request.arrived > limited.finished)
    assert len(gaps) >= 4 and sum(gap < 0.55 for gap in gaps) <= 1 and gaps[-1] >= 0.55


def test_fault_injection_is_deterministic_per_request_and_attempt(tmp_path):
    faults = Faults.spread(0.5, seed=11)
    decisions = [faults.decide(f"key{i}", attempt) for i in range(2000) for attempt in (1, 2)]
    assert decisions == [faults.decide(f"key{i}", attempt) for i in range(2000) for attempt in (1, 2)]
    shares = Counter(decisions)
    assert all(0.10 < shares[kind] / len(decisions) < 0.15 for kind in ("429", "500", "timeout", "malformed"))
    other_seed = Faults.spread(0.5, seed=12)
    assert decisions != [other_seed.decide(f"key{i}", attempt) for i in range(2000) for attempt in (1, 2)]
    # two fresh servers with the same seed misbehave identically on the same requests
    outcomes = []
    for run in range(2):
        quick = Faults(rate_429=0.2, rate_500=0.2, retry_after=0.001, seed=4)
        with LocalChatServer(faults=quick) as server:
            requests = [ChatRequest.of(f"q{i}") for i in range(30)]
            run_requests(requests, settings_for(server, tmp_path / str(run), concurrency=4))
            outcomes.append(sorted((e.prompt, e.request.attempt, e.outcome) for e in server.log))
    assert outcomes[0] == outcomes[1] and {o for *_, o in outcomes[0]} == {"ok", "429", "500"}


def test_cache_only_reports_recorded_failures_and_sends_nothing(tmp_path):
    def responder(request):
        raise ScriptedError(400, "prompt too long")

    with LocalChatServer(responder) as server:
        run_requests([ChatRequest.of("x")], settings_for(server, tmp_path))
        cache_only = settings_for(server, tmp_path, cache_only=True)
        report = run_requests([ChatRequest.of("x"), ChatRequest.of("y")], cache_only)
        assert len(server.log) == 1
    assert [r.status for r in report] == ["failed", "skipped"] and report[0].error.startswith("HTTP 400")
    assert report.stats.sent == 0
