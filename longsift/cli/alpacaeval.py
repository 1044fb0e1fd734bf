"""`longsift alpacaeval export|score|run`: AlpacaEval 2.0 files, metrics and the alpaca_eval package."""

from __future__ import annotations

import math
from pathlib import Path

import orjson
import typer
from rich.console import Console
from rich.table import Table

from longsift.generations import iter_generations
from longsift.judge import alpacaeval as api
from longsift.judge.options import AlpacaEvalExportOptions, AlpacaEvalRunOptions, AlpacaEvalScoreCommand
from longsift.manifest import MANIFEST, manifest_path, write_manifest
from longsift.options import command_options
from longsift.outputs import guard_paths, write_bytes

console = Console(stderr=True)
app = typer.Typer(help="AlpacaEval 2.0: export model outputs, score annotations (win rate, LC), run alpaca_eval.")


@app.command()
@command_options(AlpacaEvalExportOptions)
def export(
    generations: Path = typer.Argument(..., help="Generation records (JSONL, one Generation.to_dict() a line)."),
    *,
    options: AlpacaEvalExportOptions,
) -> None:
    """Write alpaca_eval's model_outputs.json from the AlpacaEval generations of a generation file."""
    output = options.output
    guard_paths([generations], [output, manifest_path(output)])
    written = api.export_model_outputs(iter_generations(generations), output, options.model_name)
    write_manifest(output, command="alpacaeval export", options=options, inputs={"generations": generations},
                   outputs={"output": output}, summary={"written": written})  # fmt: skip
    if written != 805:
        console.print(f"[yellow]note[/]: {written} outputs; the AlpacaEval set has 805 instructions")
    console.print(f"wrote {written} model outputs to {output}")


@app.command()
@command_options(AlpacaEvalScoreCommand)
def score(
    annotations: Path = typer.Argument(..., help="alpaca_eval annotations.json (or .json.gz)."),
    *,
    options: AlpacaEvalScoreCommand,
) -> None:
    """Win rate, standard error, discrete win rate and length-controlled win rate of an annotations file."""
    o = options
    result = api.score_annotations(annotations, o.difficulty, hub=o.hub, model_outputs=o.model_outputs)
    if result.length_controlled_winrate is None:
        console.print(f"[yellow]LC unavailable[/]: {result.length_controlled_note}", highlight=False, soft_wrap=True)
    if o.as_json:
        print(orjson.dumps(result.to_dict()).decode())
        return
    print_score(result)


def print_score(result: api.AlpacaEvalScore) -> None:
    table = Table(title=f"AlpacaEval: {result.model} vs {result.baseline} ({result.annotator})")
    for column in ("LC win rate", "win rate", "std. error", "discrete", "wins/base/draws", "n", "avg length"):
        table.add_column(column, justify="right")
    lc = result.length_controlled_winrate
    table.add_row(
        "n/a" if lc is None else f"{lc:.2f}", f"{result.win_rate:.2f}", _fmt(result.standard_error),
        f"{result.discrete_win_rate:.2f}", f"{result.n_wins}/{result.n_wins_base}/{result.n_draws}",
        str(result.n_total), str(result.avg_length),
    )  # fmt: skip
    Console().print(table)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.2f}"


@app.command()
@command_options(AlpacaEvalRunOptions)
def run(
    model_outputs: Path = typer.Argument(..., help="model_outputs.json (see `longsift alpacaeval export`)."),
    *,
    options: AlpacaEvalRunOptions,
) -> None:
    """Annotate with the alpaca_eval package (the `alpacaeval` extra), then score the annotations here."""
    o, output_dir = options, options.output
    written = {"annotations": output_dir / "annotations.json", "score": output_dir / "score.json"}
    guard_paths([model_outputs, o.reference_outputs, o.difficulty], [*written.values(), output_dir / MANIFEST])
    result = api.run_alpaca_eval(model_outputs, output_dir, o.annotators_config, o.reference_outputs, o.k, o.difficulty)
    write_bytes(written["score"], orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2))
    inputs = {"model_outputs": model_outputs, "reference_outputs": o.reference_outputs, "difficulty": o.difficulty}
    write_manifest(output_dir, command="alpacaeval run", options=options, inputs=inputs, outputs=written,
                   path=output_dir / MANIFEST)  # fmt: skip
    print_score(result)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="alpacaeval")
