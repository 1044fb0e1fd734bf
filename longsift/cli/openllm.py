"""`longsift openllm MODEL`: Open LLM Leaderboard benchmarks through lm-evaluation-harness."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from longsift.judge import openllm as api
from longsift.outputs import atomic_output


def openllm(
    model: str | None = typer.Argument(None, help="Hugging Face model path or id (omit with --base-url)."),
    tasks: str = typer.Option(
        ",".join(api.DEFAULT_TASKS),
        help=f"Comma-separated, from {', '.join(api.TASKS)}, or tasks of your own with --include-path. "
        f"{api.HELLASWAG_NOTE}.",
    ),
    limit: int | None = typer.Option(None, help="Evaluate only the first N examples of each task (a smoke test)."),
    batch_size: str = typer.Option("1", help="lm_eval batch size (an integer or 'auto')."),
    device: str | None = typer.Option(None, help="Device, e.g. cuda:0 or cpu."),
    model_args: str = typer.Option("", help="Extra lm_eval model_args, e.g. dtype=bfloat16."),
    seed: int = typer.Option(0, help="Seed of lm_eval's random, numpy, torch and few-shot sampling."),
    include_path: list[str] = typer.Option(
        [], "--include-path", help="A folder of lm_eval task YAML files (lm_eval's --include_path; repeatable)."
    ),
    num_fewshot: int | None = typer.Option(None, help="Shots for tasks of your own (ours keep the leaderboard's)."),
    chat_template: bool = typer.Option(False, help="Format prompts with the model's chat template (multi-turn shots)."),
    log_samples: Path | None = typer.Option(None, help="Write per-sample logs here, one <task>.jsonl per task."),
    base_url: str | None = typer.Option(
        None,
        help="Evaluate through an OpenAI-compatible /v1/completions endpoint with prompt logprobs (vLLM, "
        "`longsift serve`) instead of loading the model here.",
    ),
    model_name: str | None = typer.Option(None, help="The endpoint's model name (with --base-url)."),
    tokenizer: str | None = typer.Option(None, help="The endpoint model's tokenizer, path or hub id (--base-url)."),
    concurrency: int = typer.Option(1, help="Parallel requests to the endpoint."),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="Write the summary and raw results as JSON (after every task)."
    ),
) -> None:
    """ARC (25-shot), MMLU (5), TruthfulQA-mc2 (0), Winogrande (5) and optionally HellaSwag (10), with the
    paper-style average. Needs lm-evaluation-harness: the `openllm` extra (pip install lm-eval)."""
    from longsift.errors import ConfigError

    names = [name.strip() for name in tasks.split(",") if name.strip()]
    batch: int | str = int(batch_size) if batch_size.isdigit() else batch_size
    endpoint = None
    if base_url is not None:
        if not (model_name and tokenizer):
            raise ConfigError("--base-url needs --model-name and --tokenizer (lm_eval tokenizes the requests itself)")
        endpoint = api.Endpoint(base_url, model_name, tokenizer, concurrency)
    harness = api.HarnessOptions(include_path, chat_template, log_samples, seed, num_fewshot)
    api.resolve_tasks(names, bool(include_path), num_fewshot)  # unknown names fail before lm_eval is imported

    def save(result: dict[str, Any]) -> None:
        if output is not None:
            output.parent.mkdir(parents=True, exist_ok=True)
            with atomic_output(output) as handle:
                handle.write(orjson.dumps(result, option=orjson.OPT_INDENT_2))

    summary, raw = api.run_openllm(
        model if endpoint is None else None, names, limit, batch, device, model_args, seed, harness=harness,
        endpoint=endpoint, on_task=save,
    )  # fmt: skip
    save({"summary": summary.to_dict(), "raw": raw, "complete": True})
    table = Table(title=f"Open LLM benchmarks: {model or (endpoint.model if endpoint else '')}")
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
