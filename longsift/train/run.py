"""`train`: supervised fine-tuning on TRL's SFTTrainer with one template for training and generation.

The output folder is both the model (save_pretrained + tokenizer + longsift_template.json, loadable with
AutoModelForCausalLM.from_pretrained) and the run record: manifest.json (longsift.manifest: resolved config, data
and base model by hash, versions; its summary: NEFTune check, timings), loss.json and loss.png. Checkpoints go to
checkpoints/; a rerun resumes from the last one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from longsift.errors import ConfigError
from longsift.formats.load import RecordStream
from longsift.manifest import Manifest
from longsift.outputs import TEMP_PREFIX, finite, write_text
from longsift.records import Example
from longsift.templates import get_template, save_template
from longsift.train.config import TrainConfig, resolve_config, to_training_arguments, world_size

TINY_RECIPE = "tiny-cpu"


@dataclass
class DryRun:
    config: TrainConfig
    training_arguments: Any
    notes: list[str]

    def render(self) -> str:
        return self.training_arguments.to_json_string()


@dataclass
class TrainResult:
    output: Path
    config: TrainConfig
    summary: dict[str, Any]  # what training did: data used, steps, loss, timings, NEFTune check, template
    manifest: Manifest | None  # None on the other ranks of a multi-process run
    loss_history: list[dict[str, Any]] = field(default_factory=list)
    main_process: bool = True  # False on the other ranks of a multi-process run


def train(
    data: str | Path,
    output: str | Path,
    model: str | None = None,
    recipe: str | Path | None = None,
    tiny: bool = False,
    dry_run: bool = False,
    overrides: dict[str, Any] | None = None,
    log: Callable[[str], None] = print,
) -> TrainResult | DryRun:
    """Fine-tune `model` (path or hub id) on `data` (any format longsift reads) into `output`.

    `recipe` is a name under recipes/train or a YAML file; `overrides` are TrainConfig fields that win over it.
    `tiny=True` builds a ~1M-parameter Llama and a BPE tokenizer trained on the data (CPU demo, nothing downloaded).
    """
    output = Path(output)
    config = resolve_config(recipe or (TINY_RECIPE if tiny else None), overrides)
    if dry_run:
        return DryRun(config, *to_training_arguments(config, output))
    if model is None and not tiny:
        raise ConfigError("pass --model PATH_OR_ID (or --tiny for a tiny random model)")
    output.mkdir(parents=True, exist_ok=True)
    began = time.time()
    examples, load_report = _load_examples(data, output, config.k)
    log(load_report.summary())
    args, notes = to_training_arguments(config, output)  # first: it sets up the distributed state
    for note in notes:
        log(f"note: {note}")
    if tiny:
        with args.main_process_first(desc="tiny model"):  # under torchrun/accelerate, build it once
            model = _tiny_base(output / "tiny-base", examples, config.seed, log)
    assert model is not None
    trainer, template, recorders = build_trainer(examples, model, config, output, log=log, args=args)
    started = time.perf_counter()
    checkpoints = sorted((output / "checkpoints").glob("checkpoint-*"))
    result = trainer.train(resume_from_checkpoint=True if checkpoints else None)
    seconds = time.perf_counter() - started
    _save_model(trainer, template, config, output)
    loss, neftune = recorders
    summary = {
        "data": load_report_dict(load_report, len(examples)),
        "train_examples": len(trainer.train_dataset),
        "world_size": world_size(),
        "training": {
            "global_steps": result.global_step,
            "train_loss": result.training_loss,
            "seconds": round(seconds, 2),
            "dataset_tokens": _token_count(trainer),
            "tokens_per_second": _tokens_per_second(loss.history, seconds),
            "resumed_from_checkpoint": bool(checkpoints),
        },
        "neftune": neftune.result,
        "template": template.to_dict(),
    }
    options = {"model": model, "recipe": str(recipe or (TINY_RECIPE if tiny else "")) or None, "tiny": tiny,
               "config": config.model_dump(mode="json")}  # fmt: skip
    inputs = {"data": data, "model": None if tiny else model}  # the tiny base is built here: an output
    record = None
    if trainer.is_world_process_zero():
        record = _write_records(output, options, inputs, summary, loss.history, began)
    return TrainResult(output, config, summary, record, loss.history, trainer.is_world_process_zero())


def _load_examples(data: str | Path, output: Path, limit: int | None) -> tuple[list[Example], Any]:
    stream = RecordStream(data, quarantine=output / "quarantine.jsonl")
    examples = list(islice(stream, limit) if limit else stream)
    if not examples:
        raise ConfigError(f"{data}: no usable training examples ({stream.report.summary()})")
    return examples, stream.report


def _tiny_base(folder: Path, examples: list[Example], seed: int, log: Callable[[str], None]) -> str:
    from longsift.tiny import build_tiny_model, example_texts

    if not (folder / "config.json").is_file():
        build_tiny_model(folder, example_texts(examples), seed=seed)
        log(f"built a tiny random Llama in {folder}")
    return str(folder)


def load_report_dict(report: Any, used: int) -> dict[str, Any]:
    return {"rows_read": report.read, "rows_kept": report.kept, "rows_quarantined": report.quarantined, "used": used}


def build_trainer(
    examples: list[Example], model: str, config: TrainConfig, output: str | Path,
    log: Callable[[str], None] | None = None, args: Any = None,
) -> tuple[Any, Any, Any]:  # fmt: skip
    """The SFTTrainer for a run, with its template and (loss, NEFTune) recorders; nothing is trained yet."""
    from transformers import AutoTokenizer, PrinterCallback
    from trl import SFTTrainer

    from longsift.models.loading import with_pad_token
    from longsift.train.callbacks import LossRecorder, NEFTuneCheck
    from longsift.train.data import build_dataset

    tokenizer = with_pad_token(AutoTokenizer.from_pretrained(model, trust_remote_code=config.trust_remote_code))
    template = get_template(config.template, tokenizer, config.system)
    dataset = build_dataset(examples, tokenizer, template, config.max_length)
    if args is None:
        args, notes = to_training_arguments(config, output)
        for note in notes:
            (log or print)(f"note: {note}")
    loss, neftune = LossRecorder(echo=log), NEFTuneCheck(config.neftune_alpha)
    trainer = SFTTrainer(
        model=_load_model(model, config), args=args, train_dataset=dataset, processing_class=tokenizer,
        peft_config=_peft_config(config), callbacks=[loss, neftune],
    )  # fmt: skip
    trainer.remove_callback(PrinterCallback)  # LossRecorder shows one line per log instead of a raw dict
    return trainer, template, (loss, neftune)


def _load_model(model: str, config: TrainConfig) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"trust_remote_code": config.trust_remote_code}
    kwargs["dtype"] = "auto" if config.dtype == "auto" else getattr(torch, config.dtype)
    if config.attn_implementation:
        kwargs["attn_implementation"] = config.attn_implementation
    if config.load_in_4bit:
        kwargs["quantization_config"] = _four_bit_config()
    return AutoModelForCausalLM.from_pretrained(model, **kwargs)


def _four_bit_config() -> Any:
    import torch
    from transformers import BitsAndBytesConfig

    from longsift.errors import MissingDependencyError

    try:
        import bitsandbytes  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError("bitsandbytes", "qlora", "QLoRA (load_in_4bit)") from exc
    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )  # fmt: skip


def _peft_config(config: TrainConfig) -> Any:
    if config.lora is None:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora.r, lora_alpha=config.lora.alpha, lora_dropout=config.lora.dropout,
        target_modules=config.lora.target_modules, task_type="CAUSAL_LM",
    )  # fmt: skip


def _save_model(trainer: Any, template: Any, config: TrainConfig, output: Path) -> None:
    """Save so that AutoModelForCausalLM.from_pretrained(output) and `longsift generate` just work."""
    model = trainer.model
    tokenizer = trainer.processing_class
    stop_ids = [tokenizer.convert_tokens_to_ids(token) for token in template.stop_tokens()]
    if config.lora is not None and config.merge_lora and not config.load_in_4bit:
        model = model.merge_and_unload()
        trainer.model = model
    model.generation_config.eos_token_id = stop_ids if len(stop_ids) > 1 else stop_ids[0]
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.config.use_cache = True
    trainer.save_model(str(output))
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(output)
        save_template(template, output)


def _token_count(trainer: Any) -> int:
    dataset = trainer.train_dataset
    if "input_ids" not in dataset.column_names:
        return 0
    return int(sum(len(ids) for ids in dataset["input_ids"]))


def _tokens_per_second(history: list[dict[str, Any]], seconds: float) -> float | None:
    """Tokens trained on per second (TRL's running `num_tokens`, all processes), padding excluded."""
    seen = [h["num_tokens"] for h in history if h.get("num_tokens")]
    return round(seen[-1] / seconds, 1) if seen and seconds > 0 else None


def _write_records(
    output: Path, options: dict[str, Any], inputs: dict[str, Any], summary: dict[str, Any],
    history: list[dict[str, Any]], began: float,
) -> Manifest:  # fmt: skip
    """loss.json, loss.png, then the manifest (last: it describes them) over the model's files; checkpoints are
    resume state, not outputs."""
    from longsift.manifest import MANIFEST, write_manifest
    from longsift.train.callbacks import plot_loss

    write_text(output / "loss.json", json.dumps(finite(history), indent=1) + "\n")
    plot_loss(history, output / "loss.png", title=f"training loss ({output.name})")
    produced = {p.name: p for p in sorted(output.iterdir())
                if p.name not in (MANIFEST, "checkpoints") and not p.name.startswith(TEMP_PREFIX)}  # fmt: skip
    return write_manifest(output, command="train", options=options, inputs=inputs, outputs=produced,
                          summary=finite(summary), started=began, path=output / MANIFEST)  # fmt: skip
