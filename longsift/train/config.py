"""Training configuration: defaults < recipe YAML < CLI flags, every key checked (unknown keys are an error).

A recipe is a YAML file of TrainConfig fields; `--recipe NAME` finds recipes/train/NAME.yaml in this repository.
`to_training_arguments` turns a config into TRL's SFTConfig (a transformers TrainingArguments) for this machine.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from longsift.errors import ConfigError
from longsift.options import Options, apply_overrides, merge, option, renamed_keys
from longsift.safe_yaml import read_yaml

RECIPE_DIR = Path(__file__).resolve().parents[2] / "recipes" / "train"


class LoraOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] | str = "all-linear"


class TrainConfig(BaseModel):
    """Everything that decides a training run, declared once: the field names are the YAML keys (recipes/train/)
    and, with dashes, the `longsift train` flags (generated from these fields, see `longsift.options`)."""

    model_config = ConfigDict(extra="forbid")

    template: str = option("paper", "alpaca, vicuna, paper, paper-generation or chat.")
    system: str | None = option(None, "System prompt (default: the template's).")
    epochs: float = option(3.0, "Number of epochs.")
    max_steps: int = option(-1, "Stop after this many optimizer steps (-1: run all epochs).")
    learning_rate: float = option(2e-5, "Peak learning rate.", flags=("--learning-rate", "--lr"))
    lr_scheduler: str = option("linear", "linear, cosine, constant, ...")
    warmup_ratio: float = option(0.0, "Warm-up as a fraction of the steps.", ge=0.0, lt=1.0)
    adam_beta1: float = option(0.9, "AdamW beta1.")
    adam_beta2: float = option(0.999, "AdamW beta2.")
    weight_decay: float = option(0.0, "AdamW weight decay.")
    optim: str = option("adamw_torch", "Optimizer (a transformers `optim` name).")
    effective_batch_size: int = option(
        128, "Effective batch: per device x devices x accumulation.", deprecated=("--batch-size",), ge=1
    )
    per_device_batch_size: int = option(2, "Batch per device and step.", ge=1)
    max_length: int = option(2048, "Maximum sequence length in tokens.", ge=8)
    bf16: bool | None = option(None, "bf16 mixed precision (default: if a GPU has it, off on CPU).")
    tf32: bool | None = option(None, "TF32 matmuls (applied only where a CUDA GPU supports it).")
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = option("float32", "Dtype the weights load in.")
    neftune_alpha: float | None = option(None, "NEFTune noise alpha.", gt=0)
    gradient_checkpointing: bool = option(False, "Recompute activations in the backward pass (less memory).")
    packing: bool = option(False, "Pack examples into max_length blocks.")
    padding_free: bool = option(False, "Flatten batches.")
    lora: LoraOptions | None = option(None, "LoRA adapters (PEFT) instead of all weights.", cli=False)
    load_in_4bit: bool = option(False, "QLoRA: load the base model in 4 bits (needs lora, bitsandbytes).", cli=False)
    merge_lora: bool = option(True, "Save LoRA merged into the base weights (not with load_in_4bit).")
    attn_implementation: str | None = option(None, "Attention implementation (sdpa, flash_attention_2, eager).")
    seed: int = option(42, "Random seed.")
    logging_steps: int = option(1, "Log every this many steps.")
    save_strategy: Literal["no", "epoch", "steps"] = option("no", "Checkpoints: no, epoch or steps.")
    save_steps: int = option(500, "Steps between checkpoints (save_strategy steps).")
    save_total_limit: int | None = option(1, "Checkpoints kept.")
    trust_remote_code: bool = option(False, "Run the model repo's own code.")
    k: int | None = option(None, "Train on the first k examples only.", deprecated=("--max-examples",), ge=1)
    dataset_num_proc: int | None = option(None, "Processes that tokenize the data.")
    notes: str = option("", "Free text kept in the manifest.", cli=False)

    @model_validator(mode="before")
    @classmethod
    def _old_keys(cls, data: Any) -> Any:
        return renamed_keys(cls, data, "training config") if isinstance(data, dict) else data

    @field_validator("template")
    @classmethod
    def _known_template(cls, name: str) -> str:
        from longsift.templates import TEMPLATES

        TEMPLATES.get(name)
        return name

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.effective_batch_size % self.per_device_batch_size:
            raise ValueError(
                f"effective_batch_size {self.effective_batch_size} is not a multiple of per_device_batch_size"
            )
        if self.load_in_4bit and self.lora is None:
            raise ValueError("load_in_4bit (QLoRA) trains LoRA adapters: set lora too")
        return self

    def gradient_accumulation_steps(self, world_size: int = 1) -> int:
        per_step = self.per_device_batch_size * world_size
        if self.effective_batch_size % per_step:
            raise ConfigError(
                f"effective_batch_size {self.effective_batch_size} is not divisible by per_device_batch_size "
                f"{self.per_device_batch_size} x {world_size} processes"
            )
        return self.effective_batch_size // per_step


class TrainRun(Options):
    """What a training run starts from, besides TrainConfig (the `train` command's and recipe step's keys)."""

    model: str | None = option(None, "Base model: a local folder or a hub id.")
    recipe: str | None = option(None, "Recipe name (recipes/train/NAME.yaml) or YAML file.")
    tiny: bool = option(False, "Train a tiny random Llama built from the data (CPU demo).", flags=("--tiny",))
    overrides: dict[str, Any] | None = option(None, "TrainConfig keys over the recipe's.", cli=False)


class TinyModelOptions(Options):
    """A tiny random Llama and its BPE tokenizer (`tiny-model` and the recipe step)."""

    data: str | None = option(
        None, "Texts for the tokenizer (default: the shared Alpaca pool).", deprecated=("--texts-from",)
    )
    vocab_size: int = option(2048, "BPE vocabulary size.", ge=16)
    k: int = option(2000, "Examples of the data to train the tokenizer on.", deprecated=("--max-examples", "--limit"),
                    ge=1)  # fmt: skip
    seed: int = option(0, "Seed of the random weights.")


def recipe_path(recipe: str | Path) -> Path:
    path = Path(recipe)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise ConfigError(f"recipe file {path} does not exist")
        return path
    candidate = RECIPE_DIR / f"{recipe}.yaml"
    if not candidate.is_file():
        known = ", ".join(recipe_names()) or "(none)"
        raise ConfigError(f"unknown recipe {str(recipe)!r}: not a file and not one of {known}")
    return candidate


def recipe_names() -> list[str]:
    return sorted(p.stem for p in RECIPE_DIR.glob("*.yaml"))


def read_recipe(recipe: str | Path) -> dict[str, Any]:
    path = recipe_path(recipe)
    data = read_yaml(path) or {}  # bounded: size, depth, aliases
    if not isinstance(data, dict):
        raise ConfigError(f"recipe {path} must be a mapping of TrainConfig keys")
    return data


def parse_assignments(assignments: list[str]) -> dict[str, Any]:
    """`--set key=value` as a nested dict (value read as YAML; dotted keys reach nested options, e.g. lora.r=8)."""
    return apply_overrides({}, assignments)


def resolve_config(recipe: str | Path | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """defaults < recipe < overrides; an override of None sets the key to null (e.g. neftune_alpha: off)."""
    data = read_recipe(recipe) if recipe else {}
    where = f"recipe {recipe}" if recipe else "training config"
    try:  # old key names are renamed per layer, so a flag's batch_size still overrides a recipe's new name
        layers = [renamed_keys(TrainConfig, layer, name) for layer, name in ((data, where), (overrides or {}, "flags"))]
        return TrainConfig.model_validate(merge(*layers))
    except ValidationError as exc:
        where = f"recipe {recipe} + flags" if recipe else "flags"
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid training config ({where}): {problems}") from None


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def to_training_arguments(
    config: TrainConfig, output_dir: str | Path, processes: int | None = None
) -> tuple[Any, list[str]]:
    """TRL's SFTConfig for this machine, plus notes on what was adapted to it (e.g. tf32 without a GPU).

    `processes` (default: $WORLD_SIZE, set by accelerate/torchrun) turns the effective batch into accumulation steps.
    """
    import torch
    from trl import SFTConfig

    notes: list[str] = []
    cuda = torch.cuda.is_available()
    bf16 = config.bf16 if config.bf16 is not None else bool(cuda and torch.cuda.is_bf16_supported())
    if bf16 and not cuda:
        notes.append("bf16 on CPU: expect steps ~3x slower than fp32 on CPUs without AMX (see MACHINE-NOTES)")
    tf32 = config.tf32 if cuda else None
    if config.tf32 and not cuda:
        notes.append("tf32 ignored: no CUDA GPU")
    args = SFTConfig(
        output_dir=str(Path(output_dir) / "checkpoints"),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        adam_beta1=config.adam_beta1,
        adam_beta2=config.adam_beta2,
        weight_decay=config.weight_decay,
        optim=config.optim,
        per_device_train_batch_size=config.per_device_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps(processes or world_size()),
        # examples arrive tokenized and cut to max_length (data.py); padding-free without packing wants None here
        max_length=None if config.padding_free and not config.packing else config.max_length,
        bf16=bf16,
        tf32=tf32,
        use_cpu=not cuda,
        neftune_noise_alpha=config.neftune_alpha,
        activation_checkpointing=config.gradient_checkpointing,  # transformers 5 name of gradient checkpointing
        packing=config.packing,
        padding_free=config.padding_free,
        seed=config.seed,
        data_seed=config.seed,
        logging_steps=config.logging_steps,
        save_strategy=config.save_strategy,
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        trust_remote_code=config.trust_remote_code,
        dataset_num_proc=config.dataset_num_proc,
        report_to="none",
        disable_tqdm=True,
    )
    return args, notes
