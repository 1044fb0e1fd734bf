"""Trainer callbacks: record the loss curve, and prove that NEFTune noise is really applied."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from longsift.errors import LongsiftError
from longsift.outputs import atomic_output


class TrainingError(LongsiftError):
    pass


class LossRecorder(TrainerCallback):
    """Keeps every logged training loss (step, epoch, loss, learning rate, grad norm); `echo` shows one line each."""

    def __init__(self, echo: Callable[[str], None] | None = None) -> None:
        self.history: list[dict[str, Any]] = []
        self.echo = echo

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if logs and "loss" in logs:
            self.history.append({
                "step": state.global_step, "epoch": state.epoch, "loss": logs["loss"],
                "learning_rate": logs.get("learning_rate"), "grad_norm": logs.get("grad_norm"),
                "num_tokens": logs.get("num_tokens"),
            })  # fmt: skip
            if self.echo is not None and state.is_world_process_zero:
                self.echo(
                    f"step {state.global_step}/{state.max_steps} epoch {state.epoch:.2f} loss {logs['loss']:.4f} "
                    f"lr {logs.get('learning_rate', 0):.3g}"
                )


def input_embeddings(model: Any) -> Any:
    inner = getattr(model, "module", model)  # DDP wraps the model in .module
    return inner.get_input_embeddings()


class NEFTuneCheck(TrainerCallback):
    """After the first step, checks that NEFTune's forward hook sits on the input embeddings and adds noise.

    Fails the run when NEFTune was asked for and is not active: a silent no-op would invalidate a paper recipe.
    (At the end of the step, not its start: the Trainer puts the model in train mode inside the first step.)
    The noise is measured as the RMS difference between the hooked embedding output and a plain lookup; NEFTune
    draws uniform noise in +-alpha/sqrt(L*d), so the expected RMS is alpha/sqrt(3*L*d).
    """

    def __init__(self, alpha: float | None) -> None:
        self.alpha = alpha
        self.result: dict[str, Any] | None = None

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if self.result is not None or model is None:
            return
        embeddings = input_embeddings(model)
        hooks = [hook for hook in embeddings._forward_hooks.values() if "neftune" in getattr(hook, "__name__", "")]
        self.result = {
            "requested_alpha": self.alpha,
            "hook_attached": bool(hooks),
            "module_alpha": getattr(embeddings, "neftune_noise_alpha", None),
            "training_mode": bool(embeddings.training),
            **self._measure(embeddings),
        }
        if self.alpha and not (hooks and self.result["module_alpha"] == self.alpha and embeddings.training):
            raise TrainingError(f"NEFTune alpha {self.alpha} was requested but is not active: {self.result}")

    @staticmethod
    def _measure(embeddings: Any) -> dict[str, Any]:
        import torch

        weight = embeddings.weight
        if weight.dim() != 2 or weight.shape[0] < 2:  # sharded (FSDP/ZeRO-3): nothing to look up locally
            return {"noise_rms": None, "expected_noise_rms": None}
        ids = torch.arange(min(16, weight.shape[0]), device=weight.device).unsqueeze(0)
        with torch.no_grad():
            noisy = embeddings(ids)
            clean = torch.nn.functional.embedding(ids, weight)
        alpha = getattr(embeddings, "neftune_noise_alpha", None)
        expected = alpha / math.sqrt(3 * ids.shape[1] * weight.shape[1]) if alpha else 0.0
        return {"noise_rms": float((noisy - clean).float().pow(2).mean().sqrt()), "expected_noise_rms": expected}


def plot_loss(history: list[dict[str, Any]], path: Path, title: str = "training loss") -> Path | None:
    """A PNG of loss against step (matplotlib, Agg backend: no display needed)."""
    if not history:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot([h["step"] for h in history], [h["loss"] for h in history], marker="." if len(history) < 50 else None)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_output(path) as handle:
        fig.savefig(handle, format="png")
    plt.close(fig)
    return path
