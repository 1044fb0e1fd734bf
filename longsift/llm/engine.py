"""The one LLM engine every stage uses: cache first, then bounded concurrency, rate limits, retries, cost.

A run serves cached answers, sends the rest (never-seen requests and recorded failures), and commits each
answer to the cache as soon as it lands, so a killed run loses at most the requests in flight.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import random
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console

from longsift.errors import LongsiftError
from longsift.llm.backends import Backend, LocalBackend, PermanentError, RemoteBackend, TransientError, make_backend
from longsift.llm.cache import Cache, CacheEntry
from longsift.llm.limiter import RateLimiter
from longsift.llm.pricing import PriceTable
from longsift.llm.progress import RunProgress, format_cost
from longsift.llm.settings import LLMSettings
from longsift.llm.types import CallResult, ChatRequest, Completion

T = TypeVar("T")
MAX_RETRY_AFTER = 300.0  # a server asking for more is waited on this long, then tried again
DEFAULT_OUTPUT_ESTIMATE = 256
CHARS_PER_TOKEN = 4.0


@dataclass
class RunStats:
    requests: int = 0
    unique: int = 0
    cached: int = 0
    sent: int = 0  # HTTP requests / generations, retries included
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    prompt_tokens: int = 0  # of new calls only
    completion_tokens: int = 0
    known_cost: float = 0.0  # USD of new calls with a known price
    unpriced: int = 0  # new answered calls whose price is unknown
    elapsed: float = 0.0

    @property
    def cost(self) -> float | None:
        """What this run spent; None when any new call's price is unknown."""
        return None if self.unpriced else self.known_cost

    def summary(self) -> str:
        return (
            f"{self.requests} requests ({self.unique} distinct): {self.ok} ok ({self.cached} from cache), "
            f"{self.failed} failed, {self.skipped} skipped; {self.sent} sent; "
            f"{self.prompt_tokens:,} prompt + {self.completion_tokens:,} completion tokens; "
            f"spent {format_cost(self.known_cost, self.unpriced)}; {self.elapsed:.1f}s"
        )


@dataclass
class RunReport:
    """Results in request order (duplicates share one call), plus the run's counts."""

    results: list[CallResult]
    stats: RunStats = field(default_factory=RunStats)

    def __iter__(self) -> Iterator[CallResult]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, index: int) -> CallResult:
        return self.results[index]

    @property
    def failures(self) -> list[CallResult]:
        return [r for r in self.results if r.status == "failed"]


class Engine:
    def __init__(
        self, backend: Backend, cache: Cache | None = None, settings: LLMSettings | None = None,
        prices: PriceTable | None = None, console: Console | None = None,
    ) -> None:  # fmt: skip
        self.backend = backend
        self.cache = cache
        self.settings = settings or LLMSettings()
        self.prices = prices if prices is not None else load_prices(self.settings.prices)
        self.console = console or Console(stderr=True)
        self._rng = random.Random(self.settings.seed)

    @classmethod
    def from_settings(cls, settings: LLMSettings, output: str | Path | None = None) -> Engine:
        """Backend and cache as the settings say; `output` places the default cache in its run directory."""
        path = settings.cache_path(output)
        return cls(make_backend(settings), Cache(path) if path else None, settings)

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()

    def key(self, request: ChatRequest) -> str:
        return request.key(self.backend.name, self.backend.key_model())

    def lookup(self, requests: Sequence[ChatRequest]) -> dict[str, CacheEntry]:
        return self.cache.get_many({self.key(r) for r in requests}) if self.cache else {}

    def run_sync(self, requests: Sequence[ChatRequest], description: str = "LLM calls") -> RunReport:
        return run_coroutine(self.run(requests, description))

    async def run(self, requests: Sequence[ChatRequest], description: str = "LLM calls") -> RunReport:
        started = time.monotonic()
        keys = [self.key(r) for r in requests]
        unique = dict(zip(keys, requests, strict=True))
        stats = RunStats(requests=len(requests), unique=len(unique))
        known = self.cache.get_many(unique) if self.cache else {}
        done: dict[str, CallResult] = {}
        todo: list[tuple[str, ChatRequest, CacheEntry | None]] = []
        for key, request in unique.items():
            entry = known.get(key)
            if entry is not None and entry.ok:
                done[key] = CallResult(request, key, "ok", entry.completion, None, entry.attempts, entry.cost, True)
                stats.cached += 1
            elif self.settings.cache_only:  # report what the cache holds, send nothing
                done[key] = (
                    CallResult(request, key, "failed", None, entry.error, entry.attempts)
                    if entry is not None
                    else CallResult(request, key, "skipped", error="not in the cache (cache-only run)")
                )
            elif self.settings.retry_failed and entry is None:
                done[key] = CallResult(request, key, "skipped", error="never attempted (--retry-failed)")
            else:
                todo.append((key, request, entry))
        if todo:
            with RunProgress(description, len(todo), self.settings.progress, self.console) as progress:
                run = _Run(self, stats, progress, done)
                try:
                    if isinstance(self.backend, LocalBackend):
                        await run.local(todo)
                    else:
                        await run.remote(todo)
                finally:
                    run.writer.shutdown(wait=True)
        results = [done[key] for key in keys]
        stats.ok = sum(r.status == "ok" for r in done.values())
        stats.failed = sum(r.status == "failed" for r in done.values())
        stats.skipped = sum(r.status == "skipped" for r in done.values())
        stats.elapsed = time.monotonic() - started
        return RunReport(results, stats)

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before attempt `attempt + 1`: Retry-After when the server gave one, else exponential
        backoff with equal jitter (half fixed, half random) so that concurrent retries spread out."""
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER) * (1 + 0.1 * self._rng.random())
        ceiling = min(self.settings.backoff_max, self.settings.backoff_base * 2 ** (attempt - 1))
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def estimate_tokens(self, request: ChatRequest) -> int:
        return int(request.approx_chars() / CHARS_PER_TOKEN) + (request.sampling.max_tokens or DEFAULT_OUTPUT_ESTIMATE)


class _Run:
    """The mutable state of one run: counts, progress, results; and the two ways of calling a backend."""

    def __init__(self, engine: Engine, stats: RunStats, progress: RunProgress, done: dict[str, CallResult]) -> None:
        self.engine, self.stats, self.progress, self.done = engine, stats, progress, done
        self.settings = engine.settings
        self.model = engine.backend.key_model()
        self.limiter = RateLimiter(self.settings.rpm, self.settings.tpm)
        self.writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="llm-cache-writer")

    async def remote(self, todo: list[tuple[str, ChatRequest, CacheEntry | None]]) -> None:
        backend = self.engine.backend
        assert isinstance(backend, RemoteBackend)
        queue: asyncio.Queue[tuple[str, ChatRequest, CacheEntry | None]] = asyncio.Queue()
        for item in todo:
            queue.put_nowait(item)

        async def worker() -> None:
            while not queue.empty():
                key, request, prior = queue.get_nowait()
                await self.call(backend, key, request, prior.attempts if prior else 0)

        await backend.open(self.settings.concurrency)
        try:
            await asyncio.gather(*(worker() for _ in range(min(self.settings.concurrency, len(todo)))))
        finally:
            await backend.close()

    async def call(self, backend: RemoteBackend, key: str, request: ChatRequest, earlier_attempts: int) -> None:
        estimate = self.engine.estimate_tokens(request)
        timeout = self.settings.timeout
        for attempt in range(1, self.settings.max_attempts + 1):
            await self.limiter.acquire(estimate)
            self.stats.sent += 1
            try:
                async with asyncio.timeout(timeout):
                    completion = await backend.complete(request, timeout)
            except (TransientError, TimeoutError) as exc:
                error = exc if isinstance(exc, TransientError) else TransientError(f"timeout after {timeout:g}s")
                if error.rate_limited and error.retry_after:
                    self.limiter.pause(min(error.retry_after, MAX_RETRY_AFTER))
                if attempt == self.settings.max_attempts:
                    return await self.failed(key, request, error.reason, earlier_attempts + attempt)
                await asyncio.sleep(self.engine.backoff(attempt, error.retry_after))
            except PermanentError as exc:
                return await self.failed(key, request, exc.reason, earlier_attempts + attempt)
            else:
                self.limiter.settle(estimate, completion.usage.total)
                return await self.answered(key, request, completion, earlier_attempts + attempt)

    async def local(self, todo: list[tuple[str, ChatRequest, CacheEntry | None]]) -> None:
        backend = self.engine.backend
        assert isinstance(backend, LocalBackend)
        for batch in local_batches(todo, backend.batch_size):
            requests = [request for _, request, _ in batch]
            self.stats.sent += len(batch)
            try:
                completions = await asyncio.to_thread(backend.generate_batch, requests)
            except LongsiftError:
                raise  # the user's to fix (missing package, bad model path): stop, do not record
            except Exception as exc:  # e.g. out of memory: recorded, retried by the next run
                for key, request, prior in batch:
                    await self.failed(
                        key, request, f"{type(exc).__name__}: {exc}"[:300], (prior.attempts if prior else 0) + 1
                    )
                continue
            for (key, request, prior), completion in zip(batch, completions, strict=True):
                await self.answered(key, request, completion, (prior.attempts if prior else 0) + 1)

    async def store(self, write: Callable[..., None], *args: Any) -> None:
        """Commit on the writer thread: the caller waits for its row, the event loop keeps serving the others."""
        await asyncio.get_running_loop().run_in_executor(self.writer, write, *args)

    async def answered(self, key: str, request: ChatRequest, completion: Completion, attempts: int) -> None:
        cost = self.engine.prices.cost(self.model, completion.usage)
        if self.engine.cache is not None:
            backend = self.engine.backend.name
            await self.store(self.engine.cache.put_ok, key, backend, self.model, request, completion, cost, attempts)
        self.done[key] = CallResult(request, key, "ok", completion, None, attempts, cost, False)
        self.stats.prompt_tokens += completion.usage.prompt_tokens or 0
        self.stats.completion_tokens += completion.usage.completion_tokens or 0
        if cost is None:
            self.stats.unpriced += 1
        else:
            self.stats.known_cost += cost
        self.tick()

    async def failed(self, key: str, request: ChatRequest, reason: str, attempts: int) -> None:
        if self.engine.cache is not None:
            backend = self.engine.backend.name
            await self.store(self.engine.cache.put_failed, key, backend, self.model, request, reason, attempts)
        self.done[key] = CallResult(request, key, "failed", None, reason, attempts)
        self.stats.failed += 1
        self.tick()

    def tick(self) -> None:
        self.progress.advance(
            cost=self.stats.known_cost, unpriced=self.stats.unpriced, failed=self.stats.failed, cached=self.stats.cached
        )


def local_batches(
    todo: list[tuple[str, ChatRequest, CacheEntry | None]], size: int
) -> Iterator[list[tuple[str, ChatRequest, CacheEntry | None]]]:
    """Batches that share sampling params, with prompts of similar length together (less padding)."""
    ordered = sorted(todo, key=lambda item: (repr(item[1].sampling), item[1].approx_chars()))
    batch: list[tuple[str, ChatRequest, CacheEntry | None]] = []
    for item in ordered:
        if batch and (len(batch) == size or batch[0][1].sampling != item[1].sampling):
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


def load_prices(path: str | Path | None) -> PriceTable:
    return PriceTable.load(path) if path else PriceTable.default()


def run_coroutine(coroutine: Coroutine[Any, Any, T]) -> T:
    """asyncio.run, also from code that already runs an event loop (a notebook): then in a worker thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def run_requests(
    requests: Sequence[ChatRequest], settings: LLMSettings | None = None, *, output: str | Path | None = None,
    description: str = "LLM calls",
) -> RunReport:  # fmt: skip
    """Run chat requests with the engine the settings describe (synchronous; for stages and the CLI)."""
    with Engine.from_settings(settings or LLMSettings(), output) as engine:
        return engine.run_sync(requests, description)
