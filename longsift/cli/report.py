"""`longsift report RUN_DIR -o report.html [--markdown report.md]`; several RUN_DIRs: one comparison page."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from longsift.options import command_options
from longsift.report.options import ReportOptions

console = Console(stderr=True, soft_wrap=True)


@command_options(ReportOptions)
def report(
    run_dirs: list[Path] = typer.Argument(
        ..., help="The run directory (see longsift.layout); several: a comparison.", metavar="RUN_DIR..."
    ),
    *,
    options: ReportOptions,
) -> None:
    """One self-contained HTML report of a run: headline, tables, plots, length bias, loss curves and a prompt
    browser. Given several runs, one page comparing them: results side by side, config diff, stage timelines."""
    from longsift import layout
    from longsift.manifest import describe_inputs, write_manifest
    from longsift.report.render import report as render

    if len(run_dirs) > 1:
        _compare(run_dirs, options)
        return
    [run_dir] = run_dirs
    if options.by is not None or options.tokenizer is not None:
        from longsift.analyze import analyze

        analyze([run_dir], by=options.by, tokenizer=options.tokenizer)
    read = describe_inputs({f"run:{stage}": run_dir / stage for stage in layout.STAGES if (run_dir / stage).exists()})
    written = render(run_dir, output=options.output, markdown=options.markdown, title=options.title)
    write_manifest(written["html"], command="report", options=options.model_dump(mode="json"), inputs=read,
                   outputs={"html": written["html"], "markdown": written["markdown"]})  # fmt: skip
    for note in written["notes"]:
        console.print(f"[yellow]note[/] {note}", markup=True, highlight=False)
    if written["absent"]:
        console.print("absent: " + "; ".join(written["absent"]), highlight=False)
    console.print(f"wrote {written['html']}" + (f" and {written['markdown']}" if written["markdown"] else ""))


def _compare(run_dirs: list[Path], options: ReportOptions) -> None:
    from longsift import layout
    from longsift.errors import UsageError
    from longsift.manifest import describe_inputs, write_manifest
    from longsift.report.render import compare

    if options.output is None:
        raise UsageError("several runs make one comparison page: give it a file with -o compare.html")
    if options.markdown is not None or options.by is not None or options.tokenizer is not None:
        raise UsageError("--markdown, --by and --tokenizer apply to one run's report, not to a comparison")
    read = describe_inputs({f"run{i}:{stage}": run / stage for i, run in enumerate(run_dirs) for stage in
                            layout.STAGES if (run / stage).exists()})  # fmt: skip
    written = compare(run_dirs, options.output, title=options.title)
    write_manifest(written["html"], command="report", options=options.model_dump(mode="json"), inputs=read,
                   outputs={"html": written["html"]})  # fmt: skip
    for note in written["notes"]:
        console.print(f"[yellow]note[/] {note}", markup=True, highlight=False)
    console.print(f"wrote {written['html']}")


def register(app: typer.Typer) -> None:
    app.command()(report)
