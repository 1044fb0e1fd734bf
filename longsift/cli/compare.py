"""`longsift compare SEL_A SEL_B ... --pool POOL -o DIR`: selections of one pool side by side."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from longsift.analyze.compare import CompareOptions
from longsift.options import command_options, option

console = Console(stderr=True, soft_wrap=True)


class CompareCommand(CompareOptions):
    output: Path = option(..., "Output folder: compare.json, compare.html, manifest.json.", flags=("-o", "--output"))


@command_options(CompareCommand)
def compare(
    selections: list[Path] = typer.Argument(..., help="Selected subsets of the pool (any format longsift reads)."),
    *,
    options: CompareCommand,
) -> None:
    """Selections side by side: overlap, lengths, diversity, scores, source mix and the records unique to each."""
    from longsift.analyze.compare import summary_line, write_comparison

    result = write_comparison(selections, options.narrowed(CompareOptions), options.output)
    console.print(summary_line(result), highlight=False)
    console.print(f"wrote {options.output / 'compare.json'} and {options.output / 'compare.html'}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command()(compare)
