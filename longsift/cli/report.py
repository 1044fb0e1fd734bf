"""`longsift report RUN_DIR -o report.html [--markdown report.md]`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

console = Console(stderr=True, soft_wrap=True)


def report(
    run_dir: Path = typer.Argument(..., help="The run directory (see longsift.layout)."),
    output: Path | None = typer.Option(None, "-o", "--output", help="HTML file (default RUN_DIR/report.html)."),
    markdown: Path | None = typer.Option(None, "--markdown", help="Also write a Markdown summary here."),
    title: str | None = typer.Option(None, "--title", help="Page title (default: the run directory's name)."),
) -> None:
    """One self-contained HTML report of a run: tables, plots, length bias, loss curves and a prompt browser."""
    from longsift.report.render import report as render

    written = render(run_dir, output=output, markdown=markdown, title=title)
    for note in written["notes"]:
        console.print(f"[yellow]note[/] {note}", markup=True, highlight=False)
    if written["absent"]:
        console.print("absent: " + "; ".join(written["absent"]), highlight=False)
    console.print(f"wrote {written['html']}" + (f" and {written['markdown']}" if written["markdown"] else ""))


def register(app: typer.Typer) -> None:
    app.command()(report)
