"""Train commands: `train` (SFT on TRL) and `tiny-model` (a tiny random Llama for CPU demos and tests).

Multi-GPU: `accelerate launch --config_file recipes/accelerate/fsdp.yaml -m longsift train DATA ...`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from longsift.options import Options, apply_overrides, cli_option, command_options, option, warn_deprecated
from longsift.train.config import TinyModelOptions, TrainConfig, TrainRun

console = Console(stderr=True)


class TrainCommand(Options):
    """The flags of `train` beyond TrainConfig (generated) and TrainRun."""

    output: Path = option(..., "Run folder: the model, manifest.json, loss curve.", flags=("-o", "--output"))
    dry_run: bool = option(False, "Print the resolved TrainingArguments; load nothing.", flags=("--dry-run",))
    lora: bool = option(False, "Train LoRA adapters (PEFT) instead of all weights.", flags=("--lora",))
    lora_r: int | None = option(None, "LoRA rank (implies --lora).")
    qlora: bool = option(False, "QLoRA: 4-bit base model + LoRA (needs bitsandbytes).", flags=("--qlora",))
    set_values: list[str] = option([], "Any config key: --set key=value (YAML value).", flags=("--set",))


def overrides_of(given: dict[str, Any], lora: bool, lora_r: int | None, qlora: bool, assignments: list[str]) -> dict:
    """The TrainConfig keys the user gave as flags, then the LoRA switches, then `--set key=value`."""
    overrides = dict(given)
    if lora or lora_r is not None or qlora:
        overrides["lora"] = {"r": lora_r} if lora_r is not None else {}
    if qlora:
        overrides["load_in_4bit"] = True
    return apply_overrides(overrides, assignments)


@command_options(TrainConfig, param="config", partial=True)
def train(
    data: str = typer.Argument(..., help="Training data: any format longsift reads (alpaca, fastchat, messages, ...)."),
    output: Path = cli_option(TrainCommand, "output"),
    model: str | None = cli_option(TrainRun, "model"),
    recipe: str | None = cli_option(TrainRun, "recipe"),
    tiny: bool = cli_option(TrainRun, "tiny"),
    dry_run: bool = cli_option(TrainCommand, "dry_run"),
    lora: bool = cli_option(TrainCommand, "lora"),
    lora_r: int | None = cli_option(TrainCommand, "lora_r"),
    qlora: bool = cli_option(TrainCommand, "qlora"),
    set_values: list[str] = cli_option(TrainCommand, "set_values"),
    *,
    config: dict[str, Any],
) -> None:
    """Supervised fine-tuning with a paper recipe (TRL SFTTrainer, loss on assistant tokens only)."""
    from longsift.train import train as run_train
    from longsift.train.run import DryRun

    overrides = overrides_of(config, lora, lora_r, qlora, set_values or [])
    result = run_train(data, output, model=model, recipe=recipe, tiny=tiny, dry_run=dry_run, overrides=overrides,
                       log=lambda line: console.print(line, highlight=False, markup=False))  # fmt: skip
    if isinstance(result, DryRun):
        payload = {
            "longsift_config": result.config.model_dump(mode="json"),
            "training_arguments": json.loads(result.render()),
            "notes": result.notes,
        }
        print(json.dumps(payload, indent=2))
        return
    if not result.main_process:
        return
    run = result.summary["training"]
    console.print(
        f"trained on {result.summary['data']['used']} examples ({result.summary['train_examples']} sequences), "
        f"{run['global_steps']} steps, "
        f"loss {run['train_loss']:.4f}, {run['seconds']} s -> {result.output}",
        highlight=False,
    )


class TinyModelCommand(TinyModelOptions):
    output: Path | None = option(None, "Folder for the tiny model and tokenizer.", flags=("-o", "--output"))


@command_options(TinyModelCommand)
def tiny_model(
    old_output: Path | None = typer.Argument(None, hidden=True, metavar="[OUTPUT]", show_default=False),
    *,
    options: TinyModelCommand,
) -> None:
    """Build a tiny random Llama (~1M parameters) and a BPE tokenizer; nothing is downloaded."""
    from itertools import islice

    from longsift.errors import UsageError
    from longsift.evalsets import data_root
    from longsift.formats.load import load
    from longsift.tiny import build_tiny_model, example_texts

    output = options.output or old_output
    if output is None:
        raise UsageError("tiny-model needs -o/--output FOLDER")
    if old_output is not None:
        warn_deprecated("tiny-model OUTPUT (a positional folder)", "-o/--output")
    source = options.data or str(data_root() / "alpaca_subsets" / "alpaca_public_pool.jsonl.gz")
    examples = list(islice(load(source), options.k))
    path = build_tiny_model(output, example_texts(examples), vocab_size=options.vocab_size, seed=options.seed)
    console.print(f"tiny model ({len(examples)} examples for the tokenizer) -> {path}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command()(train)
    app.command("tiny-model")(tiny_model)
