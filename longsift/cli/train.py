"""Train commands: `train` (SFT on TRL) and `tiny-model` (a tiny random Llama for CPU demos and tests).

Multi-GPU: `accelerate launch --config_file recipes/accelerate/fsdp.yaml -m longsift train DATA ...`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

console = Console(stderr=True)


def _overrides(**flags: Any) -> dict[str, Any]:
    """CLI flags as TrainConfig overrides; None means the flag was not given."""
    assignments = flags.pop("set_values") or []
    lora, lora_r, qlora = flags.pop("lora"), flags.pop("lora_r"), flags.pop("qlora")
    overrides = {k: v for k, v in flags.items() if v is not None}
    if lora or lora_r is not None or qlora:
        overrides["lora"] = {"r": lora_r} if lora_r is not None else {}
    if qlora:
        overrides["load_in_4bit"] = True
    from longsift.options import apply_overrides

    return apply_overrides(overrides, assignments)


def train(
    data: str = typer.Argument(..., help="Training data: any format longsift reads (alpaca, fastchat, messages, ...)."),
    output: Path = typer.Option(..., "-o", "--output", help="Run folder: the model, manifest.json, loss curve."),
    model: str | None = typer.Option(None, "--model", help="Base model: a local folder or a hub id."),
    recipe: str | None = typer.Option(None, "--recipe", help="Recipe name (recipes/train/NAME.yaml) or YAML file."),
    tiny: bool = typer.Option(False, "--tiny", help="Train a tiny random Llama built from the data (CPU demo)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved TrainingArguments; load nothing."),
    template: str | None = typer.Option(None, help="alpaca, vicuna, paper, paper-generation or chat."),
    epochs: float | None = typer.Option(None, help="Number of epochs."),
    learning_rate: float | None = typer.Option(None, "--learning-rate", "--lr", help="Peak learning rate."),
    lr_scheduler: str | None = typer.Option(None, help="linear, cosine, constant, ..."),
    warmup_ratio: float | None = typer.Option(None, help="Warm-up as a fraction of the steps."),
    weight_decay: float | None = typer.Option(None, help="AdamW weight decay."),
    batch_size: int | None = typer.Option(None, help="Effective batch (per device x devices x accumulation)."),
    per_device_batch_size: int | None = typer.Option(None, help="Batch per device and step."),
    max_length: int | None = typer.Option(None, help="Maximum sequence length in tokens."),
    max_steps: int | None = typer.Option(None, help="Stop after this many optimizer steps."),
    max_examples: int | None = typer.Option(None, help="Train on the first N examples only."),
    neftune_alpha: float | None = typer.Option(None, help="NEFTune noise alpha."),
    bf16: bool | None = typer.Option(None, "--bf16/--no-bf16", help="bf16 mixed precision (default: if a GPU has it)."),
    gradient_checkpointing: bool | None = typer.Option(None, "--gradient-checkpointing/--no-gradient-checkpointing"),
    packing: bool | None = typer.Option(None, "--packing/--no-packing", help="Pack examples into max_length blocks."),
    padding_free: bool | None = typer.Option(None, "--padding-free/--no-padding-free", help="Flatten batches."),
    lora: bool = typer.Option(False, "--lora", help="Train LoRA adapters (PEFT) instead of all weights."),
    lora_r: int | None = typer.Option(None, help="LoRA rank (implies --lora)."),
    qlora: bool = typer.Option(False, "--qlora", help="QLoRA: 4-bit base model + LoRA (needs bitsandbytes)."),
    seed: int | None = typer.Option(None, help="Random seed."),
    trust_remote_code: bool | None = typer.Option(None, "--trust-remote-code", help="Run the model repo's own code."),
    set_values: list[str] | None = typer.Option(None, "--set", help="Any config key: --set key=value (YAML value)."),
) -> None:
    """Supervised fine-tuning with a paper recipe (TRL SFTTrainer, loss on assistant tokens only)."""
    from longsift.train import train as run_train
    from longsift.train.run import DryRun

    overrides = _overrides(
        template=template, epochs=epochs, learning_rate=learning_rate, lr_scheduler=lr_scheduler,
        warmup_ratio=warmup_ratio, weight_decay=weight_decay, batch_size=batch_size,
        per_device_batch_size=per_device_batch_size, max_length=max_length, max_steps=max_steps,
        max_examples=max_examples, neftune_alpha=neftune_alpha, bf16=bf16,
        gradient_checkpointing=gradient_checkpointing, packing=packing, padding_free=padding_free, seed=seed,
        trust_remote_code=trust_remote_code, lora=lora, lora_r=lora_r, qlora=qlora, set_values=set_values,
    )  # fmt: skip
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
    run = result.manifest["training"]
    console.print(
        f"trained on {result.manifest['data']['used']} examples ({result.manifest['train_examples']} sequences), "
        f"{run['global_steps']} steps, "
        f"loss {run['train_loss']:.4f}, {run['seconds']} s -> {result.output}",
        highlight=False,
    )


def tiny_model(
    output: Path = typer.Argument(..., help="Folder for the tiny model and tokenizer."),
    data: str | None = typer.Option(None, "--data", help="Texts for the tokenizer (default: the shared Alpaca pool)."),
    vocab_size: int = typer.Option(2048, help="BPE vocabulary size."),
    max_examples: int = typer.Option(2000, help="Examples of DATA to train the tokenizer on."),
    seed: int = typer.Option(0, help="Seed of the random weights."),
) -> None:
    """Build a tiny random Llama (~1M parameters) and a BPE tokenizer; nothing is downloaded."""
    from itertools import islice

    from longsift.evalsets import data_root
    from longsift.formats.load import load
    from longsift.tiny import build_tiny_model, example_texts

    source = data or str(data_root() / "alpaca_subsets" / "alpaca_public_pool.jsonl.gz")
    examples = list(islice(load(source), max_examples))
    path = build_tiny_model(output, example_texts(examples), vocab_size=vocab_size, seed=seed)
    console.print(f"tiny model ({len(examples)} examples for the tokenizer) -> {path}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command()(train)
    app.command("tiny-model")(tiny_model)
