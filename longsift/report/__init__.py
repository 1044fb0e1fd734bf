"""One self-contained HTML report (and a Markdown summary) of whatever a run directory holds.

`report` reads a run directory (its contract is `longsift.layout`) and writes the HTML
page (plots embedded as PNG, no network at view time) and optionally Markdown. Rendering loads matplotlib, so it
is imported only when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["print_headline", "report"]


def report(
    run_dir: Path, output: Path | None = None, markdown: Path | None = None, title: str | None = None
) -> dict[str, Any]:
    """Render RUN_DIR into `output` (default RUN_DIR/report.html) and, if asked, a Markdown summary."""
    from longsift.report.render import report as render

    return render(run_dir, output=output, markdown=markdown, title=title)


def print_headline(run_dir: Path, console: Any = None) -> bool:
    """Print the run's headline tables (the numbers at the top of its HTML report) with rich; False when the run
    has no results to headline yet."""
    from rich.console import Console

    from longsift.report.collect import collect
    from longsift.report.headline import headline_rich
    from longsift.report.render import run_headline

    head = run_headline(collect(Path(run_dir)))
    if head.empty:
        return False
    console = console or Console()
    for renderable in headline_rich(head):
        console.print(renderable)
    return True
