"""`longsift refine` and `longsift score`: LLM passes over a corpus, mirroring longsift.refine.refine / score.

Both write one record per input record, in input order, list the failures (on screen and in OUT's
`.failures.jsonl`), exit 0 when the run finished even if some records failed, and print a one-line summary
with the counts last (on stdout; everything else goes to stderr).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.console import Console

from longsift import empty, formats
from longsift.cli.data import drop_stale_quarantine, open_source, quarantine_path
from longsift.cli.llm_options import llm_options
from longsift.formats.load import RecordStream
from longsift.llm.outcomes import raise_if_failed, record_failure_kind
from longsift.llm.settings import LLMOptions, LLMSettings
from longsift.options import Options, command_options
from longsift.outputs import guard_paths, remove_stale_temps, side_path, write_bytes
from longsift.refine.options import CorpusFiles, RefineCommand, RefineOptions, ScoreCommand, ScoreOptions

console = Console(stderr=True)
SHOWN_FAILURES = 20


def failures_path(output: Path) -> Path:
    return side_path(output, "failures.jsonl")


def guard_refine(source: str, output: Path, prompt: Path | None, llm: LLMSettings) -> None:
    """Before any call: the output, its side files and the cache are none of the inputs, and can be written."""
    side = [quarantine_path(output), failures_path(output), side_path(output, "manifest.json")]
    guard_paths([source, prompt], [output, *side, llm.cache_path(output)])


def _report_failures(failures: Sequence, output: Path) -> None:  # Sequence[longsift.refine.fields.Failure]
    path = failures_path(output)
    if not failures:
        path.unlink(missing_ok=True)  # a rerun that fixed everything leaves no stale list
        remove_stale_temps(path)
        return
    write_bytes(path, b"".join(orjson.dumps(failure.to_dict()) + b"\n" for failure in failures))
    for failure in failures[:SHOWN_FAILURES]:
        console.print(f"[yellow]failed[/] {failure.line()}", markup=True, highlight=False)
    more = f" ({len(failures) - SHOWN_FAILURES} more)" if len(failures) > SHOWN_FAILURES else ""
    console.print(f"{len(failures)} failures listed in {path}{more}", highlight=False)


def _finish(
    stage: str, stream: RecordStream, result: Any, output: Path, fmt: str, max_failed: float | int = 0.5,
    options: dict[str, Any] | None = None, allow_empty: bool = False,
) -> None:  # fmt: skip
    """Write the records, list failures, the manifest, print the summary line (stdout); then exit 1 when too many
    failed."""
    console.print(stream.report.summary(), highlight=False)
    if result.dry_run is not None:
        print(result.dry_run.render())
        report = result.report
        from longsift.refine.passes import budget_note

        budget = budget_note(report.truncated, report.max_prompt_tokens, report.token_basis)
        print(
            f"{stage}: dry run over {report.total} records: {budget}; {report.over_budget} prompts over budget even "
            "without an answer; nothing sent, nothing written"
        )
        return
    records = list(result.records)
    if not records and not allow_empty:
        quarantine_path(output).unlink(missing_ok=True)
        r = stream.report
        empty.check(0, stage, output, *empty.source_reason(r.source, r.read, r.quarantined, dict(r.reasons)), False)
    written = formats.write(records, output, fmt)
    drop_stale_quarantine(output, stream.report.quarantined)
    _report_failures(result.report.failures, output)
    _write_manifest(stage, stream.report.source, output, options or {})
    console.print(f"wrote {written} records to {output} ({fmt})", highlight=False)
    print(result.report.summary())
    kinds = (record_failure_kind(f.status, f.error) for f in result.report.failures)
    raise_if_failed(stage, result.report.total, [k for k in kinds if k is not None], max_failed)


def _write_manifest(stage: str, source: str, output: Path, options: dict[str, Any]) -> None:
    from longsift.manifest import write_manifest

    side = {"quarantine": quarantine_path(output), "failures": failures_path(output)}
    write_manifest(output, command=stage, options=options, inputs={"source": source, "prompt": options.get("prompt")},
                   outputs={"output": output, **{k: p for k, p in side.items() if p.exists()}})  # fmt: skip


INPUT = typer.Argument(..., help="Input corpus (any format longsift reads).")


def run_pass(
    stage: str, stage_run: Callable[..., Any], source: str, command: CorpusFiles, model: type[Options],
    llm: LLMOptions, allow_empty: bool = False,
) -> None:  # fmt: skip
    """The one command body of refine and score: check the paths before any call, read the corpus, run the
    stage with its options (`model`, taken from the command's), write and report."""
    options = command.narrowed(model)
    output = command.output
    fmt = formats.output_format(output, command.output_format)
    guard_refine(source, output, getattr(options, "prompt", None), llm)
    if command.uses_ray():  # the shards on a Ray cluster, each committed as it completes (longsift/exec)
        from longsift.exec.ray_passes import command_on_ray

        return command_on_ray(stage, source, command, options, llm, fmt)
    stream = open_source(source, command.input_format, output, command.max_record_bytes)
    cache = llm.cache_path(output)
    new_cache = cache is not None and not cache.exists()
    result = stage_run(stream, llm, options, output=output)
    resolved = {**command.model_dump(mode="json", exclude={"output"}), "output_format": fmt, "llm": llm.to_dict()}
    try:
        _finish(stage, stream, result, output, fmt, llm.max_failed, resolved, allow_empty)  # type: ignore[arg-type]
    except empty.EmptyOutputError:
        if new_cache and cache is not None:  # nothing was asked: the cache this run opened holds nothing either
            for path in (cache, cache.with_name(cache.name + "-wal"), cache.with_name(cache.name + "-shm")):
                path.unlink(missing_ok=True)
        raise


@command_options(RefineCommand)
@llm_options
def refine(source: str = INPUT, allow_empty: bool = empty.flag(), *, options: RefineCommand, llm: LLMOptions) -> None:
    """Rewrite each answer with the paper's refinement prompt; failures keep the original (metadata.refine_status)."""
    from longsift.refine import refine as run_refine

    run_pass("refine", run_refine, source, options, RefineOptions, llm, allow_empty)


@command_options(ScoreCommand)
@llm_options
def score(source: str = INPUT, allow_empty: bool = empty.flag(), *, options: ScoreCommand, llm: LLMOptions) -> None:
    """Rate each answer 0-5 with AlpaGasus's accuracy prompt (metadata.score, metadata.score_status)."""
    from longsift.refine import score as run_score

    run_pass("score", run_score, source, options, ScoreOptions, llm, allow_empty)


def register(app: typer.Typer) -> None:
    app.command()(refine)
    app.command()(score)
