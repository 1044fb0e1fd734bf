"""A rich progress bar for LLM runs: done/total, the rate and ETA of fresh calls, what the run has cost so far.

Honest numbers: answers served from the cache (or by another process sharing it) arrive in bursts of thousands a
second, so they are counted apart and never enter the rate; the rate is fresh calls over the time since the first
one was sent, and the ETA is the calls left at that rate (none shown until a fresh call has finished). A cost with
calls of unknown price says "unknown price", not a dollar figure that would be wrong.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn
from rich.text import Text

UNKNOWN_PRICE = "unknown price"


class FreshRate:
    """Fresh (sent) calls per second since the run started sending; cache hits are not calls."""

    def __init__(self, cached: int = 0, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.started = clock()
        self.fresh = 0
        self.cached = cached  # the run's cache hits so far (served before the bar started)

    def per_second(self) -> float | None:
        elapsed = self.clock() - self.started
        return self.fresh / elapsed if self.fresh and elapsed > 0 else None

    def eta_seconds(self, remaining: int) -> float | None:
        rate = self.per_second()
        return remaining / rate if rate else None


def format_rate(rate: float | None) -> str:
    if rate is None:
        return "- req/s"
    return f"{rate:.1f} req/s" if rate >= 0.1 else f"{rate * 60:.1f} req/min"


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "eta -"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"eta {hours}:{minutes:02d}:{secs:02d}"


class RateColumn(ProgressColumn):
    def __init__(self, rate: FreshRate) -> None:
        super().__init__()
        self.rate = rate

    def render(self, task: Task) -> Text:
        return Text(format_rate(self.rate.per_second()), style="progress.data.speed")


class EtaColumn(ProgressColumn):
    def __init__(self, rate: FreshRate) -> None:
        super().__init__()
        self.rate = rate

    def render(self, task: Task) -> Text:
        if task.finished:
            return Text("done", style="progress.remaining")
        remaining = int((task.total or 0) - task.completed)
        return Text(format_eta(self.rate.eta_seconds(remaining)), style="progress.remaining")


def format_cost(cost: float, unpriced: int) -> str:
    """`$0.0123`; with calls of unknown price: `unknown price` (none priced) or `$0.0123 + unknown price (3
    calls)`."""
    if unpriced and not cost:
        return UNKNOWN_PRICE
    text = f"${cost:.4f}"
    return f"{text} + {UNKNOWN_PRICE} ({unpriced} calls)" if unpriced else text


class RunProgress:
    def __init__(
        self, description: str, total: int, enabled: bool, console: Console | None = None, cached: int = 0
    ) -> None:
        self.enabled = enabled and total > 0
        self.rate = FreshRate(cached)
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(self.rate),
            EtaColumn(self.rate), TextColumn("{task.fields[status]}"),
            console=console or Console(stderr=True), transient=False, disable=not self.enabled,
        )  # fmt: skip
        self._task = self._progress.add_task(description, total=total, status="")

    def __enter__(self) -> RunProgress:
        self.rate.started = self.rate.clock()
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def advance(self, *, cost: float, unpriced: int, failed: int, cached: int) -> None:
        """One request finished; `cached` (a running count) grew if its answer came from the cache."""
        if cached > self.rate.cached:
            self.rate.cached = cached
        else:
            self.rate.fresh += 1
        status = f"spent {format_cost(cost, unpriced)}"
        if cached:
            status += f" · cached {cached}"
        if failed:
            status += f" · [red]failed {failed}[/]"
        self._progress.update(self._task, advance=1, status=status)
