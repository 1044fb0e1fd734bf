"""`longsift generate MODEL EVALSET -o OUT`: batched generation with the template saved with the model."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True)


def generate(
    model: str = typer.Argument(..., help="Model folder (trained by longsift or any causal LM) or hub id."),
    eval_set: str = typer.Argument(
        ...,
        help="pairwise, koala, lima, sinstruct, vicuna, wizardlm, alpacaeval, mtbench (comma-separated), or a file.",
    ),
    output: Path = typer.Option(..., "-o", "--output", help="Generations, JSON lines (resumes from OUT.partial)."),
    max_new_tokens: int = typer.Option(512, help="Maximum new tokens per answer."),
    batch_size: int = typer.Option(16, help="Prompts per batch."),
    batch_tokens: int | None = typer.Option(None, help="Cap on prompts x padded length per batch."),
    template: str | None = typer.Option(None, help="Override the template saved with the model."),
    backend: str = typer.Option("transformers", help="transformers or vllm."),
    data_dir: Path | None = typer.Option(None, help="Data folder (default: $LONGSIFT_DATA or ../shared/data)."),
    limit: int | None = typer.Option(None, help="Only the first N prompts of each eval set."),
    model_name: str | None = typer.Option(None, help="Name recorded in the outputs (default: the folder name)."),
    temperature: float = typer.Option(0.0, help="0 = greedy."),
    top_p: float = typer.Option(1.0, help="Nucleus sampling (with temperature > 0)."),
    seed: int = typer.Option(0, help="Sampling seed."),
    dtype: str = typer.Option("auto", help="auto, float32, bfloat16, float16."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Run the model repo's own code."),
    alpacaeval: Path | None = typer.Option(None, help="Also write AlpacaEval model_outputs.json here."),
    mtbench: Path | None = typer.Option(None, help="Also write a FastChat MT-Bench answer file here."),
    compat: str | None = typer.Option(None, help="paper: the paper's generation prompt (CRLF Alpaca, LIMA as a list)."),
) -> None:
    """Answer an eval set with a model; one Generation record per prompt."""
    from longsift.generate import generate as run_generate
    from longsift.generate import manifest_path, partial_path
    from longsift.outputs import guard_paths

    model_files = sorted(Path(model).iterdir()) if Path(model).is_dir() else [model]
    outputs = [output, partial_path(output), manifest_path(output), alpacaeval, mtbench]
    guard_paths([*model_files, *eval_set.split(","), data_dir], [o for o in outputs if o is not None])
    columns = (TextColumn("generate"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("generate", total=None)
        generations = run_generate(
            model, eval_set, output, max_new_tokens=max_new_tokens, batch_size=batch_size,
            batch_tokens=batch_tokens, template=template, backend=backend, data_dir=data_dir, limit=limit,
            model_name=model_name, temperature=temperature, top_p=top_p, seed=seed, dtype=dtype,
            trust_remote_code=trust_remote_code, alpacaeval=alpacaeval, mtbench=mtbench, compat=compat,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )  # fmt: skip
    finishes = [f for g in generations for f in g.metadata["generation"]["finish_reasons"]]
    console.print(
        f"wrote {len(generations)} generations to {output} ({finishes.count('stop')} stopped, "
        f"{finishes.count('length')} hit --max-new-tokens)",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command()(generate)
