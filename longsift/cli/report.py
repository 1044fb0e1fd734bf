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
    from longsift import layout
    from longsift.manifest import describe_inputs, write_manifest
    from longsift.report.render import report as render

    if by is not None or tokenizer is not None:
        from longsift.analyze import analyze

        analyze([run_dir], by=by, tokenizer=tokenizer)
    read = describe_inputs({f"run:{stage}": run_dir / stage for stage in layout.STAGES if (run_dir / stage).exists()})
    written = render(run_dir, output=output, markdown=markdown, title=title)
    write_manifest(written["html"], command="report", options={"title": title, "by": by, "tokenizer": tokenizer},
                   inputs=read, outputs={"html": written["html"], "markdown": written["markdown"]})  # fmt: skip
    for note in written["notes"]:
        console.print(f"[yellow]note[/] {note}", markup=True, highlight=False)
    if written["absent"]:
        console.print("absent: " + "; ".join(written["absent"]), highlight=False)
    console.print(f"wrote {written['html']}" + (f" and {written['markdown']}" if written["markdown"] else ""))


def register(app: typer.Typer) -> None:
    app.command()(report)
