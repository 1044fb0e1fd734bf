"""Training configuration: defaults < recipe YAML < CLI flags, every key checked (unknown keys are an error).

A recipe is a YAML file of TrainConfig fields; `--recipe NAME` finds recipes/train/NAME.yaml in this repository.
`to_training_arguments` turns a config into TRL's SFTConfig (a transformers TrainingArguments) for this machine.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from longsift.errors import ConfigError
from longsift.options import apply_overrides, merge
from longsift.safe_yaml import read_yaml

RECIPE_DIR = Path(__file__).resolve().parents[2] / "recipes" / "train"


class LoraOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] | str = "all-linear"


class TrainConfig(BaseModel):
    """Everything that decides a training run. Field names are the YAML keys and, with dashes, the CLI flags."""

    model_config = ConfigDict(extra="forbid")

    template: str = "paper"
    system: str | None = Field(None, description="system prompt; None keeps the template's default")
    epochs: float = 3.0
    max_steps: int = -1
    learning_rate: float = 2e-5
    lr_scheduler: str = "linear"
    warmup_ratio: float = Field(0.0, ge=0.0, lt=1.0)
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    weight_decay: float = 0.0
    optim: str = "adamw_torch"
    batch_size: int = Field(128, ge=1, description="effective batch: per device x devices x accumulation")
    per_device_batch_size: int = Field(2, ge=1)
    max_length: int = Field(2048, ge=8)
    bf16: bool | None = Field(None, description="None: on where a GPU supports it, off on CPU")
    tf32: bool | None = Field(None, description="applied only where a CUDA GPU supports it")
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = "float32"
    neftune_alpha: float | None = Field(None, gt=0)
    gradient_checkpointing: bool = False
    packing: bool = False
    padding_free: bool = False
    lora: LoraOptions | None = None
    load_in_4bit: bool = Field(False, description="QLoRA: load the base model in 4 bits (needs lora, bitsandbytes)")
    merge_lora: bool = Field(True, description="save LoRA merged into the base weights (not with load_in_4bit)")
    attn_implementation: str | None = None
    seed: int = 42
    logging_steps: int = 1
    save_strategy: Literal["no", "epoch", "steps"] = "no"
    save_steps: int = 500
    save_total_limit: int | None = 1
    trust_remote_code: bool = False
    max_examples: int | None = Field(None, ge=1, description="train on the first N examples only")
    dataset_num_proc: int | None = None
    notes: str = ""

    @field_validator("template")
    @classmethod
    def _known_template(cls, name: str) -> str:
        from longsift.templates import TEMPLATES

        TEMPLATES.get(name)
        return name

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.batch_size % self.per_device_batch_size:
            raise ValueError(f"batch_size {self.batch_size} is not a multiple of per_device_batch_size")
        if self.load_in_4bit and self.lora is None:
            raise ValueError("load_in_4bit (QLoRA) trains LoRA adapters: set lora too")
        return self

    def gradient_accumulation_steps(self, world_size: int = 1) -> int:
        per_step = self.per_device_batch_size * world_size
        if self.batch_size % per_step:
            raise ConfigError(
                f"batch_size {self.batch_size} is not divisible by per_device_batch_size {self.per_device_batch_size}"
                f" x {world_size} processes"
            )
        return self.batch_size // per_step


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
    try:
        return TrainConfig.model_validate(merge(data, overrides or {}))
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
