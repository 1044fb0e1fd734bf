"""`longsift openllm MODEL`: Open LLM Leaderboard benchmarks through lm-evaluation-harness."""

from __future__ import annotations

from typing import Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from longsift.judge import openllm as api
from longsift.judge.options import OpenLLMOptions
from longsift.options import command_options
from longsift.outputs import atomic_output


@command_options(OpenLLMOptions)
def openllm(
    model: str | None = typer.Argument(None, help="Hugging Face model path or id (omit with --base-url)."),
    *,
    options: OpenLLMOptions,
) -> None:
    """ARC (25-shot), MMLU (5), TruthfulQA-mc2 (0), Winogrande (5) and optionally HellaSwag (10), with the
    paper-style average. Needs lm-evaluation-harness: the `openllm` extra (pip install lm-eval)."""
    from longsift.errors import ConfigError
    from longsift.manifest import manifest_path, write_manifest
    from longsift.outputs import guard_paths

    o, output = options, options.output
    if output is not None:  # before lm_eval loads anything: an output that is an input, or an unwritable folder
        guard_paths([model, o.tokenizer, *o.include_path], [output, manifest_path(output)])
    names = [name.strip() for name in o.tasks.split(",") if name.strip()]
    batch: int | str = int(o.local_batch_size) if o.local_batch_size.isdigit() else o.local_batch_size
    endpoint = None
    if o.base_url is not None:
        if not (o.model_name and o.tokenizer):
            raise ConfigError("--base-url needs --model-name and --tokenizer (lm_eval tokenizes the requests itself)")
        endpoint = api.Endpoint(o.base_url, o.model_name, o.tokenizer, o.concurrency)
    harness = api.HarnessOptions(list(o.include_path), o.chat_template, o.log_samples, o.seed, o.num_fewshot)
    api.resolve_tasks(names, bool(o.include_path), o.num_fewshot)  # unknown names fail before lm_eval is imported

    def save(result: dict[str, Any]) -> None:
        if output is not None:
            output.parent.mkdir(parents=True, exist_ok=True)
            with atomic_output(output) as handle:
                handle.write(orjson.dumps(result, option=orjson.OPT_INDENT_2))

    summary, raw = api.run_openllm(
        model if endpoint is None else None, names, o.k, batch, o.device, o.model_args, o.seed, harness=harness,
        endpoint=endpoint, on_task=save,
    )  # fmt: skip
    save({"summary": summary.to_dict(), "raw": raw, "complete": True})
    if output is not None:
        inputs = {"model": model, "tokenizer": o.tokenizer, "include_path": list(o.include_path)}
        write_manifest(output, command="openllm", options=options, inputs=inputs, outputs={"output": output},
                       summary={"average": summary.average})  # fmt: skip
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
