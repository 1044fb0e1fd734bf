"""`longsift alpacaeval export|score|run`: AlpacaEval 2.0 files, metrics and the alpaca_eval package."""

from __future__ import annotations

import math
from pathlib import Path

import orjson
import typer
from rich.console import Console
from rich.table import Table

from longsift import empty
from longsift.generations import iter_generations, write_alpacaeval
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
    allow_empty: bool = empty.flag(),
    *,
    options: AlpacaEvalExportOptions,
) -> None:
    """Write alpaca_eval's model_outputs.json from the AlpacaEval generations of a generation file."""
    output = options.output
    guard_paths([generations], [output, manifest_path(output)])
    records = list(iter_generations(generations))
    chosen = [g for g in records if g.eval_set == api.EVAL_SET]
    sets = ", ".join(sorted({g.eval_set for g in records})) or "none"
    empty.check(len(chosen), "alpacaeval export", output,
                f"{generations} holds {len(records)} generations, none of eval set {api.EVAL_SET!r} (its sets: {sets})",
                "generate them first: `longsift generate MODEL alpacaeval -o FILE`", allow_empty)  # fmt: skip
    if chosen:
        written = api.export_model_outputs(chosen, output, options.model_name)
    else:
        written = write_alpacaeval([], output, options.model_name)
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
    allow_empty: bool = empty.flag(),
    *,
    options: AlpacaEvalRunOptions,
) -> None:
    """Annotate with the alpaca_eval package (the `alpacaeval` extra), then score the annotations here."""
    o, output_dir = options, options.output
    written = {"annotations": output_dir / "annotations.json", "score": output_dir / "score.json"}
    guard_paths([model_outputs, o.reference_outputs, o.difficulty], [*written.values(), output_dir / MANIFEST])
    empty.check(
        count_outputs(model_outputs),
        "alpacaeval run",
        output_dir,
        f"{model_outputs} holds no outputs",
        "export them first: `longsift alpacaeval export GENERATIONS -o model_outputs.json`",
        allow_empty,
    )
    result = api.run_alpaca_eval(model_outputs, output_dir, o.annotators_config, o.reference_outputs, o.k, o.difficulty)
    write_bytes(written["score"], orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2))
    inputs = {"model_outputs": model_outputs, "reference_outputs": o.reference_outputs, "difficulty": o.difficulty}
    write_manifest(output_dir, command="alpacaeval run", options=options, inputs=inputs, outputs=written,
                   path=output_dir / MANIFEST)  # fmt: skip
    print_score(result)


def count_outputs(model_outputs: Path) -> int:
    """How many entries alpaca_eval would annotate (a file that is not a JSON list: its own error, later)."""
    try:
        data = orjson.loads(model_outputs.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return -1
    return len(data) if isinstance(data, list) else -1


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="alpacaeval")
