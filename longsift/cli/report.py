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
    by: str | None = typer.Option(
        None,
        "--by",
        help="Length unit: chars, words, nltk (the paper's selection unit) or tokens (with --tokenizer). "
        "Given, the run is analyzed again in it first; without it the report shows RUN_DIR/analyze/analysis.json "
        "as it is.",
    ),  # fmt: skip
    tokenizer: str | None = typer.Option(None, "--tokenizer", help="Tokenizer for --by tokens."),
) -> None:
    """One self-contained HTML report of a run: tables, plots, length bias, loss curves and a prompt browser."""
    from longsift.report.render import report as render

    if by is not None or tokenizer is not None:
        from longsift.analyze import analyze

        analyze([run_dir], by=by, tokenizer=tokenizer)
    written = render(run_dir, output=output, markdown=markdown, title=title)
    for note in written["notes"]:
        console.print(f"[yellow]note[/] {note}", markup=True, highlight=False)
    if written["absent"]:
        console.print("absent: " + "; ".join(written["absent"]), highlight=False)
    console.print(f"wrote {written['html']}" + (f" and {written['markdown']}" if written["markdown"] else ""))


def register(app: typer.Typer) -> None:
    app.command()(report)
