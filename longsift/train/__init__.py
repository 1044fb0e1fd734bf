"""The train stage: `train(data, output, model=..., recipe=...)` on TRL's SFTTrainer. Heavy imports stay inside."""

from longsift.train.config import LoraOptions, TrainConfig, recipe_names, resolve_config
from longsift.train.run import DryRun, TrainResult, build_trainer, train

__all__ = [
    "DryRun", "LoraOptions", "TrainConfig", "TrainResult", "build_trainer", "recipe_names", "resolve_config", "train",
]  # fmt: skip
