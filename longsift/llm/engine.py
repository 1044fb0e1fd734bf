"""The one LLM engine every stage uses: cache first, then bounded concurrency, rate limits, retries, cost.

A run serves cached answers, sends the rest (never-seen requests and recorded failures), and commits each
answer to the cache as soon as it lands, so a killed run loses at most the requests in flight.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import random
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console

from longsift.errors import ConfigError, LongsiftError
from longsift.llm.backends import (
    Backend,
    LocalBackend,
    ModelNotFound,
    PermanentError,
    RemoteBackend,
    TransientError,
    make_backend,
)
from longsift.llm.cache import Cache, CacheEntry, Owner
from longsift.llm.limiter import RateLimiter
from longsift.llm.outcomes import FINAL_FAILURES, Rejection, check_completion
from longsift.llm.pricing import PriceTable
from longsift.llm.progress import RunProgress, format_cost
from longsift.llm.redact import redact
from longsift.llm.settings import LLMSettings
from longsift.llm.types import CallResult, ChatRequest, Completion

T = TypeVar("T")
Item = tuple[str, ChatRequest, "CacheEntry | None"]  # (key, request, its cache row if any)
MAX_RETRY_AFTER = 300.0  # a server asking for more is waited on this long, then tried again
MODEL_LIST_TIMEOUT = 10.0
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
        self._model_checked = False

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
        since = time.time()  # rows written from now on by another process are this run's answers (see claim)
        keys = [self.key(r) for r in requests]
        unique = dict(zip(keys, requests, strict=True))
        stats = RunStats(requests=len(requests), unique=len(unique))
        known = self.cache.get_many(unique) if self.cache else {}
        done: dict[str, CallResult] = {}
        todo: list[tuple[str, ChatRequest, CacheEntry | None]] = []
        for key, request in unique.items():
            entry = known.get(key)
            standing = self.from_cache(request, key, entry)
            if standing is not None:
                done[key] = standing
                stats.cached += standing.ok
            elif self.settings.cache_only:  # report what the cache holds, send nothing
                done[key] = (
                    CallResult(request, key, "failed", None, self.cached_error(request, entry), entry.attempts)
                    if entry is not None
                    else CallResult(request, key, "skipped", error="not in the cache (cache-only run)")
                )
            elif self.settings.retry_failed and entry is None:
                done[key] = CallResult(request, key, "skipped", error="never attempted (--retry-failed)")
            else:
                todo.append((key, request, entry))
        if todo and isinstance(self.backend, RemoteBackend) and not self._model_checked:
            await self.check_model(self.backend)
        if todo:
            bar = RunProgress(description, len(todo), self.settings.progress, self.console, cached=stats.cached)
            with bar as progress:
                run = _Run(self, stats, progress, done, since)
                try:
                    if isinstance(self.backend, LocalBackend):
                        await run.local(todo)
                    else:
                        await run.remote(todo)
                finally:
                    run.writer.shutdown(wait=True)
            if run.stopped is not None:
                raise ConfigError(run.stopped)
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

    def rejection(self, request: ChatRequest, completion: Completion) -> Rejection | None:
        """Why a completion does not count as an answer to `request` (cut off, empty, oversized), or None."""
        return check_completion(completion, self.settings.reply_char_limit(request.sampling.max_tokens))

    def from_cache(self, request: ChatRequest, key: str, entry: CacheEntry | None) -> CallResult | None:
        """The cached outcome that stands: an answer, or a final failure (a reply cut off or unfinished: the
        same request gets the same reply, so it is not paid for again unless --retry-failed); None: ask."""
        if entry is None or entry.completion is None:
            return None
        rejected = self.rejection(request, entry.completion)
        if rejected is None and entry.ok:
            return CallResult(request, key, "ok", entry.completion, None, entry.attempts, entry.cost, True)
        if rejected is not None and rejected.kind in FINAL_FAILURES and not self.settings.retry_failed:
            return CallResult(request, key, "failed", entry.completion, rejected.reason, entry.attempts, None, True)
        return None

    def cached_error(self, request: ChatRequest, entry: CacheEntry) -> str | None:
        rejected = self.rejection(request, entry.completion) if entry.completion is not None else None
        return rejected.reason if rejected is not None else entry.error

    async def check_model(self, backend: RemoteBackend) -> None:
        """Stop before sending when the endpoint lists its models and --model is not among them (once per engine)."""
        self._model_checked = True
        if not self.settings.check_model or not hasattr(backend, "list_models"):
            return
        await backend.open(1)
        try:
            served = await backend.list_models(min(self.settings.timeout, MODEL_LIST_TIMEOUT))
        finally:
            await backend.close()
        if served and not model_listed(backend.model, served):
            shown = ", ".join(served[:8]) + (f" (and {len(served) - 8} more)" if len(served) > 8 else "")
            raise ConfigError(
                f"model {backend.model!r} is not served at {self.settings.resolved_base_url()}; it serves: {shown} "
                "(pass --no-model-check if it serves models it does not list)"
            )

    def estimate_tokens(self, request: ChatRequest) -> int:
        return int(request.approx_chars() / CHARS_PER_TOKEN) + (request.sampling.max_tokens or DEFAULT_OUTPUT_ESTIMATE)


class _Run:
    """The mutable state of one run: counts, progress, results; and the two ways of calling a backend."""

    def __init__(
        self, engine: Engine, stats: RunStats, progress: RunProgress, done: dict[str, CallResult], since: float
    ) -> None:
        self.engine, self.stats, self.progress, self.done = engine, stats, progress, done
        self.settings = engine.settings
        self.model = engine.backend.key_model()
        self.limiter = RateLimiter(self.settings.rpm, self.settings.tpm)
        self.writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="llm-cache-writer")
        self.since = since
        self.owner = Owner.new(self.settings.lease_seconds)
        self.stopped: str | None = None  # why the whole run stopped (the model does not exist)

    async def remote(self, todo: list[Item]) -> None:
        """Workers send what the feeder hands them; the feeder claims requests in batches (one transaction each)
        and keeps those another process is asking aside, looking at them again with growing delays."""
        backend = self.engine.backend
        assert isinstance(backend, RemoteBackend)
        workers = min(self.settings.concurrency, len(todo))
        work: asyncio.Queue[Item | None] = asyncio.Queue()
        taken = asyncio.Event()

        async def worker() -> None:
            while (item := await work.get()) is not None:
                taken.set()
                if self.stopped is None:
                    key, request, prior = item
                    await self.call(backend, key, request, prior.attempts if prior else 0)

        async def feeder() -> None:
            try:
                await self.feed(todo, work, taken, workers)
            finally:
                for _ in range(workers):
                    work.put_nowait(None)

        await backend.open(self.settings.concurrency)
        heartbeat = asyncio.create_task(self.heartbeat()) if self.engine.cache is not None else None
        try:
            await asyncio.gather(feeder(), *(worker() for _ in range(workers)))
        finally:
            if heartbeat is not None:
                heartbeat.cancel()
                await self.store(self.engine.cache.release, self.owner)  # type: ignore[union-attr]
            await backend.close()

    async def feed(self, todo: list[Item], work: asyncio.Queue[Item | None], taken: asyncio.Event, size: int) -> None:
        cache = self.engine.cache
        if cache is None:  # nothing shared: no claims
            for item in todo:
                work.put_nowait(item)
            return
        loop = asyncio.get_running_loop()
        pending = collections.deque(todo)
        waiting: list[tuple[float, Item]] = []  # (when to look again, item): another process is asking
        rounds: collections.Counter[str] = collections.Counter()
        while (pending or waiting) and self.stopped is None:
            while work.qsize() >= size:  # claim just ahead of the workers, not the whole run at once
                taken.clear()
                await taken.wait()
            now = loop.time()
            waiting.sort(key=lambda entry: entry[0])
            due = [item for when, item in waiting[:size] if when <= now]
            del waiting[: len(due)]
            batch = due + [pending.popleft() for _ in range(min(size - len(due), len(pending)))]
            if not batch:
                await asyncio.sleep(max(0.0, waiting[0][0] - now))
                continue
            claims = await self.fetch(cache.claim_many, [key for key, _, _ in batch], self.owner, self.since)
            for item in batch:
                state, entry = claims[item[0]]
                if state == "mine":
                    work.put_nowait(item)
                elif state == "done" and entry is not None:
                    self.answered_elsewhere(item[0], item[1], entry)
                else:
                    rounds[item[0]] += 1
                    waiting.append((now + _poll_delay(rounds[item[0]]), item))

    async def heartbeat(self) -> None:
        """Renew this run's leases while its requests are in flight."""
        cache = self.engine.cache
        assert cache is not None
        while True:
            await asyncio.sleep(self.owner.ttl / 3)
            await self.store(cache.renew, self.owner)

    def answered_elsewhere(self, key: str, request: ChatRequest, entry: CacheEntry) -> None:
        """Another process sharing the cache answered (or failed) this request during this run: that stands."""
        standing = self.engine.from_cache(request, key, entry)
        if standing is None:
            error = self.engine.cached_error(request, entry)
            standing = CallResult(request, key, "failed", None, error, entry.attempts, None, True)
        self.done[key] = standing
        self.stats.cached += standing.ok
        self.stats.failed += not standing.ok
        self.tick()

    async def call(self, backend: RemoteBackend, key: str, request: ChatRequest, earlier_attempts: int) -> None:
        estimate = self.engine.estimate_tokens(request)
        timeout = self.settings.timeout
        for attempt in range(1, self.settings.max_attempts + 1):
            if self.stopped is not None:
                return
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
            except ModelNotFound as exc:
                self.stopped = f"the endpoint does not serve model {backend.model!r}: {redact(exc.reason)}"
                return
            except PermanentError as exc:
                return await self.failed(key, request, exc.reason, earlier_attempts + attempt)
            else:
                self.limiter.settle(estimate, completion.usage.total)
                return await self.finished(key, request, completion, earlier_attempts + attempt)

    async def finished(self, key: str, request: ChatRequest, completion: Completion, attempts: int) -> None:
        """A completion arrived: an answer, or a failure when it is cut off, empty or oversized (paid all the
        same: its tokens and cost are counted)."""
        rejected = self.engine.rejection(request, completion)
        if rejected is None:
            return await self.answered(key, request, completion, attempts)
        self.spent(completion)
        if rejected.kind not in FINAL_FAILURES:
            return await self.failed(key, request, rejected.reason, attempts)
        if self.engine.cache is not None:  # kept with its reply, for audit and so that it is not paid again
            backend = self.engine.backend.name
            args = (key, backend, self.model, request, completion, rejected.reason, attempts)
            await self.store(self.engine.cache.put_rejected, *args)
        self.done[key] = CallResult(request, key, "failed", completion, rejected.reason, attempts)
        self.stats.failed += 1
        self.tick()

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
                        key, request, redact(f"{type(exc).__name__}: {exc}")[:300], (prior.attempts if prior else 0) + 1
                    )
                continue
            for (key, request, prior), completion in zip(batch, completions, strict=True):
                await self.finished(key, request, completion, (prior.attempts if prior else 0) + 1)

    async def store(self, write: Callable[..., None], *args: Any) -> None:
        """Commit on the writer thread: the caller waits for its row, the event loop keeps serving the others."""
        await asyncio.get_running_loop().run_in_executor(self.writer, write, *args)

    async def fetch(self, read: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.writer, read, *args)

    async def answered(self, key: str, request: ChatRequest, completion: Completion, attempts: int) -> None:
        cost = self.spent(completion)
        if self.engine.cache is not None:
            backend = self.engine.backend.name
            await self.store(self.engine.cache.put_ok, key, backend, self.model, request, completion, cost, attempts)
        self.done[key] = CallResult(request, key, "ok", completion, None, attempts, cost, False)
        self.tick()

    def spent(self, completion: Completion) -> float | None:
        """Count a completion's tokens and cost (answers and rejected replies alike: both were paid)."""
        cost = self.engine.prices.cost(self.model, completion.usage)
        self.stats.prompt_tokens += completion.usage.prompt_tokens or 0
        self.stats.completion_tokens += completion.usage.completion_tokens or 0
        if cost is None:
            self.stats.unpriced += 1
        else:
            self.stats.known_cost += cost
        return cost

    async def failed(self, key: str, request: ChatRequest, reason: str, attempts: int) -> None:
        reason = redact(reason)
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


def _poll_delay(round: int) -> float:
    """Seconds before looking again at a request another process holds: 50 ms, growing to 1 s."""
    return min(1.0, 0.05 * 1.5 ** (round - 1))


def model_listed(model: str, served: Sequence[str]) -> bool:
    """Is `model` among the served names? Case-insensitive; Ollama's implicit ":latest" and a served name with or
    without an organisation prefix ("org/name") count."""
    wanted = model.lower()
    names = {name.lower() for name in served}
    if wanted in names or f"{wanted}:latest" in names:
        return True
    return any(name.endswith("/" + wanted) or wanted.endswith("/" + name) for name in names)


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
