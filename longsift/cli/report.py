"""`longsift report RUN_DIR -o report.html [--markdown report.md]`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from longsift.options import command_options
from longsift.report.options import ReportOptions

console = Console(stderr=True, soft_wrap=True)


@command_options(ReportOptions)
def report(
    run_dir: Path = typer.Argument(..., help="The run directory (see longsift.layout)."), *, options: ReportOptions
) -> None:
    """One self-contained HTML report of a run: tables, plots, length bias, loss curves and a prompt browser."""
    from longsift.report.render import report as render

    if options.by is not None or options.tokenizer is not None:
        from longsift.analyze import analyze

        analyze([run_dir], by=options.by, tokenizer=options.tokenizer)
    written = render(run_dir, output=options.output, markdown=options.markdown, title=options.title)
    for note in written["notes"]:
        console.print(f"[yellow]note[/] {note}", markup=True, highlight=False)
    if written["absent"]:
        console.print("absent: " + "; ".join(written["absent"]), highlight=False)
    console.print(f"wrote {written['html']}" + (f" and {written['markdown']}" if written["markdown"] else ""))


def register(app: typer.Typer) -> None:
    app.command()(report)
