"""`longsift openllm MODEL`: Open LLM Leaderboard benchmarks through lm-evaluation-harness."""

from __future__ import annotations

from pathlib import Path

import orjson
import typer
from rich.console import Console
from rich.table import Table

from longsift.judge import openllm as api
from longsift.outputs import write_bytes


def openllm(
    model: str = typer.Argument(..., help="Hugging Face model path or id."),
    tasks: str = typer.Option(
        ",".join(api.DEFAULT_TASKS), help=f"Comma-separated, from {', '.join(api.TASKS)}. {api.HELLASWAG_NOTE}."
    ),
    limit: int | None = typer.Option(None, help="Evaluate only the first N examples of each task (a smoke test)."),
    batch_size: str = typer.Option("1", help="lm_eval batch size (an integer or 'auto')."),
    device: str | None = typer.Option(None, help="Device, e.g. cuda:0 or cpu."),
    model_args: str = typer.Option("", help="Extra lm_eval model_args, e.g. dtype=bfloat16."),
    seed: int = typer.Option(0, help="Seed for lm_eval's random, numpy and torch."),
    output: Path | None = typer.Option(None, "-o", "--output", help="Write the summary and raw results as JSON."),
) -> None:
    """ARC (25-shot), MMLU (5), TruthfulQA-mc2 (0), Winogrande (5) and optionally HellaSwag (10), with the
    paper-style average. Needs lm-evaluation-harness: the `openllm` extra (pip install lm-eval)."""
    names = [name.strip() for name in tasks.split(",") if name.strip()]
    batch: int | str = int(batch_size) if batch_size.isdigit() else batch_size
    summary, raw = api.run_openllm(model, names, limit, batch, device, model_args, seed)
    if output is not None:
        write_bytes(output, orjson.dumps({"summary": summary.to_dict(), "raw": raw}, option=orjson.OPT_INDENT_2))
    table = Table(title=f"Open LLM benchmarks: {model}")
    table.add_column("task")
    table.add_column("score (%)", justify="right")
    for name, score in summary.scores.items():
        table.add_row(name, f"{score:.2f}")
    if summary.average is not None:
        table.add_row("average (" + ", ".join(summary.average_tasks) + ")", f"{summary.average:.2f}")
    console = Console()
    console.print(table)
    for note in summary.notes:
        console.print(f"note: {note}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command()(openllm)
