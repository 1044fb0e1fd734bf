"""A rich progress bar for LLM runs: done/total, rate, ETA, and what the run has cost so far."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.text import Text


class RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f} req/s" if speed else "- req/s", style="progress.data.speed")


def format_cost(cost: float, unpriced: int) -> str:
    if unpriced and not cost:
        return "$?"
    text = f"${cost:.4f}"
    return text + f" + ? ({unpriced} unpriced)" if unpriced else text


class RunProgress:
    def __init__(self, description: str, total: int, enabled: bool, console: Console | None = None) -> None:
        self.enabled = enabled and total > 0
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(),
            TimeRemainingColumn(), TextColumn("{task.fields[status]}"),
            console=console or Console(stderr=True), transient=False, disable=not self.enabled,
        )  # fmt: skip
        self._task = self._progress.add_task(description, total=total, status="")

    def __enter__(self) -> RunProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def advance(self, *, cost: float, unpriced: int, failed: int, cached: int) -> None:
        status = f"spent {format_cost(cost, unpriced)}"
        if cached:
            status += f" · cached {cached}"
        if failed:
            status += f" · [red]failed {failed}[/]"
        self._progress.update(self._task, advance=1, status=status)
