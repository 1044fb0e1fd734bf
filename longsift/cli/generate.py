"""`longsift generate MODEL EVALSET -o OUT`: batched generation with the template saved with the model."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from longsift import empty
from longsift.generate.options import GenerateOptions
from longsift.options import command_options, option

console = Console(stderr=True)


class GenerateCommand(GenerateOptions):
    output: Path = option(..., "Generations, JSON lines (resumes from OUT.partial).", flags=("-o", "--output"))


@command_options(GenerateCommand)
def generate(
    model: str = typer.Argument(..., help="Model folder (trained by longsift or any causal LM) or hub id."),
    eval_set: str = typer.Argument(..., help=GenerateOptions.model_fields["eval_set"].description),
    allow_empty: bool = empty.flag(),
    *,
    options: GenerateCommand,
) -> None:
    """Answer an eval set with a model; one Generation record per prompt."""
    from longsift.generate import generate as run_generate
    from longsift.generate import manifest_path, partial_path
    from longsift.outputs import guard_paths

    o = options
    output = o.output
    model_files = sorted(Path(model).iterdir()) if Path(model).is_dir() else [model]
    outputs = [output, partial_path(output), manifest_path(output), o.alpacaeval, o.mtbench]
    guard_paths([*model_files, *eval_set.split(","), o.data_dir], [p for p in outputs if p is not None])
    check_not_empty(eval_set, o, allow_empty)
    columns = (TextColumn("generate"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("generate", total=None)
        generations = run_generate(
            model, eval_set, output, max_new_tokens=o.max_new_tokens, batch_size=o.prompts_per_batch,
            batch_tokens=o.batch_tokens, template=o.template, backend=o.backend, data_dir=o.data_dir, limit=o.k,
            model_name=o.model_name, temperature=o.temperature, top_p=o.top_p, seed=o.seed, dtype=o.dtype,
            trust_remote_code=o.trust_remote_code, alpacaeval=o.alpacaeval, mtbench=o.mtbench, compat=o.compat,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )  # fmt: skip
    finishes = [f for g in generations for f in g.metadata["generation"]["finish_reasons"]]
    console.print(
        f"wrote {len(generations)} generations to {output} ({finishes.count('stop')} stopped, "
        f"{finishes.count('length')} hit --max-new-tokens)",
        highlight=False,
    )


def check_not_empty(eval_set: str, o: GenerateCommand, allow_empty: bool) -> None:
    """Before any model is loaded: the prompts, and the AlpacaEval/MT-Bench files asked for, are not empty."""
    from collections import Counter

    from longsift.evalsets import load_eval_set
    from longsift.generate import first_per_set

    counts = Counter(p.eval_set for p in first_per_set(load_eval_set(eval_set, o.data_dir), o.k))
    reason = f"eval set {eval_set!r} holds no prompts" + (f" with --k {o.k}" if o.k is not None else "")
    empty.check(sum(counts.values()), "generate", o.output, reason, "give --k 1 or more, or another eval set",
                allow_empty)  # fmt: skip
    for flag, name, path in (("--alpacaeval", "alpacaeval", o.alpacaeval), ("--mtbench", "mtbench", o.mtbench)):
        if path is not None:
            empty.check(
                counts[name],
                "generate",
                path,
                f"eval set {eval_set!r} has no {name} prompts",
                f"add {name} to the eval set (e.g. `{eval_set},{name}`) or drop {flag}",
                allow_empty,
            )


def register(app: typer.Typer) -> None:
    app.command()(generate)
