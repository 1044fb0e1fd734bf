"""Data commands: convert, select, stats."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from longsift import empty, formats
from longsift.formats.load import Quarantine, RecordStream
from longsift.options import command_options, option
from longsift.outputs import guard_paths, remove_stale_temps, side_path, write_bytes
from longsift.select.options import ConvertOptions, SelectOptions, StatsOptions

if TYPE_CHECKING:
    from rich.console import Console


@functools.cache
def console() -> Console:
    """Rich's console on stderr, built on first use: `select --quiet` never needs it (start-up time counts)."""
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True)


def say(line: str) -> None:
    """A plain line on stderr: summaries are plain text (no rich markup or emoji codes to misread in paths)."""
    print(line, file=sys.stderr)


def quarantine_path(output: Path) -> Path:
    return side_path(output, "quarantine.jsonl")


def manifest_path(output: Path) -> Path:
    """Beside the output, a file or a folder of shards (parquet-shards: inside, it would read as one more shard)."""
    return side_path(output, "manifest.json")


def drop_stale_quarantine(output: Path, quarantined: int) -> None:
    """A clean run leaves no quarantine of an earlier run beside its output (it would describe other data)."""
    if not quarantined:
        quarantine_path(output).unlink(missing_ok=True)
        remove_stale_temps(quarantine_path(output))


def open_source(
    source: str, format: str | None, output: Path, limits: formats.rows.Limits | int, quiet: bool = False
) -> RecordStream:
    if isinstance(limits, int):  # a record size limit alone
        limits = formats.rows.Limits(max_record_bytes=limits)
    shown = 0

    def show(rejection: formats.load.Rejection) -> None:
        nonlocal shown
        shown += 1
        if not quiet and shown <= 20:
            console().print(f"[yellow]quarantined[/] {rejection.message()}", markup=True, highlight=False)

    return RecordStream(
        source, format, quarantine=Quarantine(quarantine_path(output)), limits=limits, on_reject=show,
    )  # fmt: skip


class ConvertCommand(ConvertOptions):
    output: Path = option(..., "Output file.", flags=("-o", "--output"))


class SelectCommand(SelectOptions):
    output: Path = option(..., "Output file (.json alpaca, .jsonl messages, .parquet).", flags=("-o", "--output"))


class StatsCommand(StatsOptions):
    output: Path | None = option(
        None, "Folder: write stats.json and histograms here.", flags=("-o", "--output"), deprecated=("--output-dir",)
    )


@command_options(ConvertCommand)
def convert(
    source: str = typer.Argument(..., help="Input file, dataset folder or hub id."),
    allow_empty: bool = empty.flag(),
    *,
    options: ConvertCommand,
) -> None:
    """Convert a corpus from one format to another (bad records go to the quarantine file)."""
    output = options.output
    fmt = formats.output_format(output, options.output_format)
    if options.dry_run_on_ray():
        return dry_run("convert", source, options, "records read and checked")
    guard_paths([source], [output, quarantine_path(output), manifest_path(output)])  # before any work, side files too
    digest = None
    if options.uses_ray():  # read and checked shard by shard on a Ray cluster (longsift/exec), in pool order
        written, report = _convert_on_ray(source, output, fmt, options, allow_empty)
    else:
        done = _convert_fast(source, output, fmt, options)
        written, report, digest = done if done is not None else (*_convert_stream(source, output, fmt, options,
                                                                                   allow_empty), None)  # fmt: skip
    drop_stale_quarantine(output, report.quarantined)
    resolved = {**options.model_dump(mode="json", exclude={"output"}), "output_format": fmt}
    write_manifest(output, "convert", source, resolved, {"written": written, "rows_read": report.read,
                                                         "rows_quarantined": report.quarantined},
                   written={output: digest} if digest else None)  # fmt: skip
    console().print(report.summary())
    console().print(f"wrote {written} records to {output} ({fmt})")


def _convert_fast(source: str, output: Path, fmt: str, options: ConvertCommand) -> tuple[int, Any, str] | None:
    """Parallel blocks (longsift/convert.py), or None where only the sequential path is exact."""
    from longsift import convert as parallel

    if not parallel.applies(source, fmt):
        return None
    quarantine = Quarantine(quarantine_path(output))
    return parallel.convert(source, output, fmt, options.input_format, options.limits(), quarantine,
                            workers=options.workers, on_reject=_show_rejection())  # fmt: skip


def _convert_stream(source: str, output: Path, fmt: str, options: ConvertCommand, allow_empty: bool) -> tuple[int, Any]:
    stream = open_source(source, options.input_format, output, options.limits())
    return _write_converted(stream, stream.report, source, output, fmt, allow_empty), stream.report


def _convert_on_ray(source: str, output: Path, fmt: str, options: ConvertCommand, allow_empty: bool) -> tuple[int, Any]:
    from longsift.exec import ray_select

    records, report = ray_select.convert_records(source, format=options.input_format, limits=options.limits(),
                                                 address=options.ray_address, lines=True,
                                                 quarantine=Quarantine(quarantine_path(output)))  # fmt: skip
    return _write_converted(records, report, source, output, fmt, allow_empty), report


def _write_converted(stream: Any, report: Any, source: str, output: Path, fmt: str, allow_empty: bool) -> int:
    def explain() -> tuple[str, str]:
        return empty.source_reason(source, report.read, report.quarantined, dict(report.reasons))

    try:
        return formats.write(empty.guarded(stream, "convert", output, explain, allow_empty), output, fmt)
    except empty.EmptyOutputError:
        quarantine_path(output).unlink(missing_ok=True)  # this run's, just put in place: nothing is written
        raise


@command_options(SelectCommand)
def select(
    source: str = typer.Argument(..., help="Input file, dataset folder or hub id."),
    allow_empty: bool = empty.flag(),
    *,
    options: SelectCommand,
) -> None:
    """Keep k records: the longest responses (the paper's selection), a seeded random sample, or by LLM score."""
    from longsift.select import select as run_select

    output = options.output
    fmt = formats.output_format(output, options.format_out())
    if options.dry_run_on_ray():
        return select_dry_run(source, options)
    guard_paths([source, options.tokenizer], [output, quarantine_path(output), manifest_path(output)])
    chosen = options.narrowed(SelectOptions)
    with progress_bar(options.quiet) as on_progress:
        selection = run_select(
            source, options=chosen, quarantine=quarantine_path(output), on_progress=on_progress,
            on_reject=None if options.quiet else _show_rejection(),
            run_folder=_run_folder(output) if options.uses_ray() else None,  # shards committed: resumable
        )  # fmt: skip
    if not selection.examples and not allow_empty:
        quarantine_path(output).unlink(missing_ok=True)
        empty.check(0, "select", output, *empty.why_none_selected(selection.summary, chosen), allow_empty)
    written = formats.write(selection.examples, output, fmt)
    drop_stale_quarantine(output, selection.summary.rows_quarantined)
    resolved = {**chosen.model_dump(mode="json"), "output_format": fmt}
    write_manifest(output, "select", source, resolved, selection.summary.to_dict(), options.tokenizer)
    for line in selection.summary.lines():
        say(line)
    say(f"wrote {written} records to {output} ({fmt})")


@command_options(StatsCommand)
def stats(
    source: str = typer.Argument(..., help="A corpus or a selection."),
    allow_empty: bool = empty.flag(),
    *,
    options: StatsCommand,
) -> None:
    """Length distribution per unit (percentiles, histogram) and how a selection compares to its source."""
    import orjson

    from longsift.select.stats import histogram_path, plot_histograms

    output_dir, by = options.output, options.by
    if options.dry_run_on_ray():
        return dry_run("stats", source, options, f"{', '.join(by)} lengths counted")
    if output_dir is not None:
        written = [output_dir / "stats.json", output_dir / "manifest.json",
                   *(histogram_path(output_dir, unit) for unit in by)]  # fmt: skip
        guard_paths([source, options.compare, options.tokenizer], written)
    report = stats_with_progress(source, options)
    empty.check(report.rows_kept, "stats", output_dir,
                *empty.source_reason(source, report.rows_read, report.rows_quarantined), allow_empty)  # fmt: skip
    data = report.to_dict()
    if output_dir is not None:
        write_bytes(output_dir / "stats.json", orjson.dumps(data, option=orjson.OPT_INDENT_2))
        data["histograms"] = [str(p) for p in plot_histograms(report, output_dir)]
        resolved = options.model_dump(mode="json", exclude={"output", "as_json"})
        write_stats_manifest(output_dir, resolved, source, options.compare, options.tokenizer, data["histograms"])
    if options.as_json:
        typer.echo(orjson.dumps(data).decode())
        return
    print_stats(report)
    if output_dir is not None:
        console().print(f"wrote {output_dir / 'stats.json'} and {len(data['histograms'])} histogram(s)")


def stats_with_progress(source: str, options: StatsOptions) -> Any:
    """longsift.select.stats.stats, one unit at a time under a bar (units done, elapsed) on a terminal; the
    report is the one a single call gives."""
    import dataclasses
    import time

    from longsift.select.stats import stats as run_stats

    common: dict[str, Any] = {"compare": options.compare, "tokenizer": options.tokenizer, "workers": options.workers,
              "format": options.input_format, "limits": options.limits()}  # fmt: skip
    if options.uses_ray():  # every length counted on a Ray cluster (longsift/exec), the same statistics
        from longsift.exec import ray_select

        return ray_select.stats(source, options.by, address=options.ray_address, lines=True, **common)
    if not console().is_terminal or options.as_json:
        return run_stats(source, options.by, **common)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    reports = []
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("units"), TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=console(), transient=True) as bar:
        task = bar.add_task("stats", total=len(options.by))
        for unit in options.by:
            started = time.monotonic()
            bar.update(task, description=f"stats: {unit} lengths of {Path(source).name}"
                       + (f" and {Path(options.compare).name}" if options.compare else ""))  # fmt: skip
            reports.append(run_stats(source, [unit], **common))
            bar.update(task, advance=1)
            say(f"stats: {unit} counted in {time.monotonic() - started:.1f}s")
    units = {name: stat for report in reports for name, stat in report.units.items()}
    return dataclasses.replace(reports[-1], units=units)


def _run_folder(output: Path) -> Path:
    from longsift.exec.commits import work_folder  # the one place that names it (score/refine use it too)

    return work_folder(output)


def dry_run(command: str, source: str, options: Any, what: str, encoder: str | None = None) -> None:
    """`--dry-run --executor ray`: shards, rows, calls and cost on stderr; nothing read past the rows, nothing
    written."""
    from longsift.exec import survey

    say(survey.dry_run(command, source, format=options.input_format, limits=options.limits(),
                       workers=getattr(options, "workers", None), address=options.ray_address, what=what,
                       encoder=encoder))  # fmt: skip


def select_dry_run(source: str, options: Any) -> None:
    """A selection's dry run; an embedding method's (kcenter, diverse, dedup-semantic) says what it embeds."""
    from longsift.models.embed import DEFAULT_ENCODER
    from longsift.select import make_plan, method_options

    method = make_plan(options.method, options.k, **method_options(options)).method
    if not hasattr(method, "pick"):
        return dry_run("select", source, options, f"--by {options.unit()} lengths counted")
    encoder = getattr(method, "encoder", None) or DEFAULT_ENCODER
    return dry_run("select", source, options, "records embedded", encoder)


def print_stats(report: Any) -> None:
    from rich.table import Table

    console().print(f"{report.source}: rows read {report.rows_read} = kept {report.rows_kept} + "
                  f"quarantined {report.rows_quarantined}", highlight=False)  # fmt: skip
    for name, stat in report.units.items():
        table = Table(title=f"response length ({name})")
        table.add_column("corpus")
        for column in ("n", "mean", "median", "p10", "p90", "p99", "min", "max"):
            table.add_column(column, justify="right")
        rows = [(report.source, stat.corpus)] + ([(report.compare, stat.compare)] if stat.compare else [])
        for label, dist in rows:
            p = dist.percentiles
            cells = [f"{dist.mean:.1f}", f"{dist.median:.0f}", *(f"{p[q]:.0f}" for q in ("p10", "p90", "p99"))]
            table.add_row(Path(label).name, str(dist.count), *cells, str(dist.min), str(dist.max))
        console().print(table)
        comparison = stat.comparison()
        if comparison:
            console().print(f"mean {stat.corpus.mean:.1f} vs source {stat.compare.mean:.1f} "
                          f"({comparison['mean_ratio']:.2f}x); "
                          f"{comparison['source_share_at_or_above_min']:.1%} of the source is at or above the "
                          f"selection's shortest ({stat.corpus.min})", highlight=False)  # fmt: skip


def _show_rejection() -> Callable[[formats.load.Rejection], None]:
    shown = 0

    def show(rejection: formats.load.Rejection) -> None:
        nonlocal shown
        shown += 1
        if shown <= 20:
            console().print(f"[yellow]quarantined[/] {rejection.message()}", markup=True, highlight=False)

    return show


@contextmanager
def progress_bar(quiet: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A rich bar over bytes of the input; nothing when quiet or not on a terminal."""
    if quiet or not console().is_terminal:
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("selecting"), BarColumn(), DownloadColumn(), TimeRemainingColumn(), console=console(),
                  transient=True) as bar:  # fmt: skip
        task = bar.add_task("select", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def write_manifest(output: Path, command: str, source: str, options: dict[str, Any], summary: dict[str, Any],
                   tokenizer: str | None = None, written: dict[Path, str] | None = None) -> Path:  # fmt: skip
    """`<output name without its extension>.manifest.json` (longsift.manifest): the command's resolved options, its
    input and tokenizer by content hash, its output and quarantine by size and sha256 (`written`: files hashed as
    they were written, not read again)."""
    from longsift import manifest

    quarantine = quarantine_path(output)
    cache = manifest.HashCache()
    for path, digest in (written or {}).items():
        cache.remember(path, digest)
    manifest.write_manifest(
        output, command=command, options=options, summary=summary, path=manifest_path(output),
        inputs={"source": source, "tokenizer": tokenizer},
        outputs={"output": output, "quarantine": quarantine if quarantine.exists() else None}, cache=cache,
    )  # fmt: skip
    return manifest_path(output)


def write_stats_manifest(folder: Path, options: dict[str, Any], source: str, compare: str | None,
                         tokenizer: str | None, histograms: list[str]) -> None:  # fmt: skip
    from longsift import manifest

    outputs: dict[str, str | Path | None] = {"stats": folder / "stats.json"}
    outputs |= {f"histogram:{Path(p).name}": p for p in histograms}
    inputs = {"source": source, "compare": compare, "tokenizer": tokenizer}
    manifest.write_manifest(folder, path=folder / manifest.MANIFEST, command="stats", options=options, inputs=inputs,
                            outputs=outputs)  # fmt: skip


def register(app: typer.Typer) -> None:
    app.command()(convert)
    app.command()(select)
    app.command()(stats)
