"""Data commands: convert (and, from the selection stage, select and stats)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from longsift import formats
from longsift.formats.load import Quarantine, RecordStream

console = Console(stderr=True)


def quarantine_path(output: Path) -> Path:
    return output.with_name(output.name.split(".")[0] + ".quarantine.jsonl")


def open_source(
    source: str, format: str | None, output: Path, max_record_bytes: int, quiet: bool = False
) -> RecordStream:
    shown = 0

    def show(rejection: formats.load.Rejection) -> None:
        nonlocal shown
        shown += 1
        if not quiet and shown <= 20:
            console.print(f"[yellow]quarantined[/] {rejection.message()}", markup=True, highlight=False)

    return RecordStream(
        source, format, quarantine=Quarantine(quarantine_path(output)), max_record_bytes=max_record_bytes,
        on_reject=show,
    )  # fmt: skip


def convert(
    source: str = typer.Argument(..., help="Input file, dataset folder or hub id."),
    output: Path = typer.Option(..., "-o", "--output", help="Output file."),
    input_format: str | None = typer.Option(None, "--input-format", help="Force the input format."),
    format: str | None = typer.Option(None, "--format", help="alpaca, fastchat, messages, parquet."),
    max_record_bytes: int = typer.Option(formats.load.DEFAULT_MAX_RECORD_BYTES, help="Quarantine larger records."),
) -> None:
    """Convert a corpus from one format to another (bad records go to the quarantine file)."""
    stream = open_source(source, input_format, output, max_record_bytes)
    written = formats.write(stream, output, format)
    console.print(stream.report.summary())
    console.print(f"wrote {written} records to {output} ({formats.output_format(output, format)})")


def register(app: typer.Typer) -> None:
    app.command()(convert)
