"""Training: paper recipes, config precedence, assistant-only loss, NEFTune, EOS learning, options, run records.

One tiny model is trained per session (the `tiny_trained` fixture, tiny-cpu recipe, 200 real Alpaca examples);
the other runs here are a few steps each on its tiny base model.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from itertools import islice
from pathlib import Path

import pytest

from longsift import formats, load
from longsift.errors import ConfigError, MissingDependencyError, UnknownNameError
from longsift.records import EvalPrompt, Example, Message
from longsift.templates import Conversation, get_template
from longsift.train import build_trainer, resolve_config, train
from longsift.train.config import TrainConfig, parse_assignments, recipe_names, to_training_arguments
from longsift.train.data import IGNORE_INDEX, tokenize_example

PAPER = {  # recipe: (learning rate, NEFTune alpha)
    "paper-llama2-7b": (1e-5, 5.0),
    "paper-llama2-13b": (1e-5, 3.0),
    "paper-mistral-7b": (2e-6, 3.0),
}


@pytest.fixture(scope="module")
def pool_examples(alpaca_pool: Path) -> list[Example]:
    return list(islice(load(alpaca_pool), 200))


@pytest.fixture(scope="module")
def tokenizer(tiny_trained):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_trained.output)


# -- recipes and configuration --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(PAPER))
def test_paper_recipes_resolve_to_the_papers_hyperparameters(name: str, tmp_path: Path):
    learning_rate, neftune = PAPER[name]
    config = resolve_config(name)
    args, notes = to_training_arguments(config, tmp_path)
    assert config.template == "paper" and config.effective_batch_size == 128 and config.tf32 is True
    assert (args.num_train_epochs, args.learning_rate, args.lr_scheduler_type, args.warmup_steps) == (
        15,
        learning_rate,
        "linear",
        0.0,
    )
    assert (args.adam_beta1, args.adam_beta2, args.weight_decay, args.optim) == (0.9, 0.95, 0.1, "adamw_torch")
    assert (args.max_length, args.bf16, args.neftune_noise_alpha, args.gradient_checkpointing) == (
        2048,
        True,
        neftune,
        True,
    )
    assert args.per_device_train_batch_size * args.gradient_accumulation_steps == 128  # one process
    four_gpus, _ = to_training_arguments(config, tmp_path, processes=4)
    assert four_gpus.per_device_train_batch_size * four_gpus.gradient_accumulation_steps * 4 == 128
    assert four_gpus.gradient_accumulation_steps == 16  # the release: 4 GPUs x 2 x 16
    assert args.output_dir == str(tmp_path / "checkpoints") and args.report_to == []


def test_the_7b_recipe_notes_the_released_neftune_alpha():
    config = resolve_config("paper-llama2-7b")
    assert config.neftune_alpha == 5 and "15" in config.notes and "neftune" in config.notes.lower()
    assert set(recipe_names()) >= {*PAPER, "tiny-cpu", "paper-full-alpaca-52k"}


def test_precedence_defaults_then_recipe_then_flags(tmp_path: Path):
    assert resolve_config() == TrainConfig()
    config = resolve_config("paper-llama2-7b", {"learning_rate": 2e-5, "neftune_alpha": 15})
    assert (config.learning_rate, config.neftune_alpha, config.epochs, config.optim) == (2e-5, 15, 15, "adamw_torch")
    assert resolve_config("paper-llama2-7b", parse_assignments(["neftune_alpha=null"])).neftune_alpha is None
    recipe = tmp_path / "mine.yaml"
    recipe.write_text("epochs: 2\nlora: {r: 4}\n")
    config = resolve_config(recipe, parse_assignments(["lora.alpha=8", "weight_decay=0.05"]))
    assert (config.epochs, config.lora.r, config.lora.alpha, config.weight_decay) == (2, 4, 8, 0.05)


@pytest.mark.parametrize(
    "recipe_text, overrides, message",
    [
        ("epochs: 2\nlearning_rat: 1e-5\n", {}, "learning_rat"),
        ("", {"effective_batch_size": 10, "per_device_batch_size": 4}, "multiple"),
        ("", {"load_in_4bit": True}, "lora"),
        ("", {"lora": {"rank": 4}}, "rank"),
        ("- a list\n", {}, "mapping"),
    ],
)
def test_bad_configs_are_errors(tmp_path: Path, recipe_text: str, overrides: dict, message: str):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(recipe_text)
    with pytest.raises(ConfigError, match=message):
        resolve_config(recipe, overrides)


def test_unknown_recipe_and_template_names():
    with pytest.raises(ConfigError, match="paper-llama2-7b"):
        resolve_config("paper-llama2-70b")
    with pytest.raises(UnknownNameError, match="paper"):
        resolve_config(None, {"template": "papr"})
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_assignments(["epochs"])


def test_dry_run_prints_training_arguments_without_loading_anything(cli, tmp_path: Path):
    out = tmp_path / "never-created"
    result = cli(
        "train", "no-such-data.json", "--model", "/no/such/model", "--recipe", "paper-mistral-7b", "-o", str(out),
        "--dry-run", "--neftune-alpha", "15", "--set", "lora.r=8",
    )  # fmt: skip
    payload = json.loads(result.stdout)
    args = payload["training_arguments"]
    assert (args["learning_rate"], args["neftune_noise_alpha"], args["num_train_epochs"]) == (2e-6, 15.0, 15.0)
    assert (args["adam_beta2"], args["weight_decay"], args["max_length"], args["bf16"]) == (0.95, 0.1, 2048, True)
    assert payload["longsift_config"]["lora"]["r"] == 8 and not out.exists()
    bad = cli("train", "x.json", "-o", str(out), "--recipe", "nope", "--dry-run", check=False)
    assert bad.returncode == 2 and "unknown recipe 'nope'" in bad.stderr and "Traceback" not in bad.stderr
    bad = cli("train", "x.json", "-o", str(out), "--set", "bogus=1", "--dry-run", check=False)
    assert bad.returncode == 2 and "bogus" in bad.stderr


# -- assistant-only loss -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["alpaca", "vicuna", "paper", "chat"])
def test_first_supervised_token_is_the_first_response_token(name: str, tokenizer, pool_examples: list[Example]):
    template = get_template(name, tokenizer)
    example = next(e for e in pool_examples if e.input)
    item = tokenize_example(example, tokenizer, template)
    ids, labels = item["input_ids"], item["labels"]
    first = next(i for i, label in enumerate(labels) if label != IGNORE_INDEX)
    prompt = EvalPrompt("x", "t", (example.prompt,), {"instruction": example.instruction, "input": example.input})
    prompt_ids = tokenizer(
        template.prompt(Conversation.from_prompt(prompt)), add_special_tokens=template.add_special_tokens
    )
    assert ids[:first] == prompt_ids["input_ids"]  # everything before it is exactly the generation prompt
    first_piece = tokenizer.decode([ids[first]]).strip()
    assert first_piece and example.response.startswith(first_piece)  # and it begins the response
    supervised = [token for token in labels if token != IGNORE_INDEX]
    assert supervised[-1] == tokenizer.convert_tokens_to_ids(template.eos_token)  # the model is taught to stop
    assert tokenizer.decode(supervised, skip_special_tokens=True).strip() == example.response.strip()


def test_every_assistant_turn_is_trained_and_no_user_turn(tokenizer):
    conversation = Example("mt", (
        Message("user", "What is two plus two?"), Message("assistant", "Four."),
        Message("user", "And three plus three?"), Message("assistant", "Six."),
    ))  # fmt: skip
    for name in ("vicuna", "chat"):
        item = tokenize_example(conversation, tokenizer, get_template(name, tokenizer))
        trained = tokenizer.decode([t for t in item["labels"] if t != IGNORE_INDEX], skip_special_tokens=True)
        assert trained.replace(" ", "") == "Four.Six."


def test_the_trainer_receives_our_labels(tiny_trained, pool_examples: list[Example], tmp_path: Path, tokenizer):
    config = resolve_config("tiny-cpu", {"per_device_batch_size": 4, "batch_size": 4})
    trainer, template, _ = build_trainer(pool_examples[:4], str(tiny_trained.output / "tiny-base"), config, tmp_path)
    batch = next(iter(trainer.get_train_dataloader()))
    expected = {tuple(tokenize_example(e, tokenizer, template)["input_ids"]): e for e in pool_examples[:4]}
    for ids, labels, mask in zip(batch["input_ids"], batch["labels"], batch["attention_mask"], strict=True):
        ids = ids[mask.bool()].tolist()
        example = expected[tuple(ids)]
        prompt = template.prompt(Conversation((example.messages[0],), example.instruction, example.input))
        first = int((labels != IGNORE_INDEX).nonzero()[0])
        assert first == len(tokenizer(prompt)["input_ids"])


# -- the shared run: records, NEFTune, reload --------------------------------------------------------------------------
def test_run_folder_records_config_data_hash_versions_and_loss(tiny_trained, alpaca_pool: Path):
    manifest = json.loads((tiny_trained.output / "manifest.json").read_text())
    (data,) = [i for i in manifest["inputs"] if i["role"] == "data"]
    assert data["kind"] == "file" and data["sha256"] == hashlib.sha256(alpaca_pool.read_bytes()).hexdigest()
    assert not [i for i in manifest["inputs"] if i["role"] == "model"]  # the tiny base is built: an output
    summary, options = manifest["summary"], manifest["options"]
    assert summary["data"]["used"] == 200 and summary["train_examples"] == 200
    assert options["config"]["learning_rate"] == resolve_config("tiny-cpu").learning_rate
    assert options["recipe"] == "tiny-cpu" and summary["template"]["name"] == "paper"
    assert {"torch", "transformers", "trl", "peft", "accelerate", "python"} <= set(manifest["versions"])
    produced = set(manifest["outputs"])
    assert {"config.json", "loss.json", "tiny-base"} <= produced and "checkpoints" not in produced
    loss = json.loads((tiny_trained.output / "loss.json").read_text())
    assert len(loss) == summary["training"]["global_steps"] == 26  # 200 examples / 16 per step x 2 epochs
    assert loss[-1]["loss"] < loss[0]["loss"]
    assert (tiny_trained.output / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_neftune_noise_was_applied_during_training(tiny_trained):
    check = tiny_trained.summary["neftune"]
    assert check["hook_attached"] and check["training_mode"] and check["module_alpha"] == 5
    assert check["noise_rms"] == pytest.approx(check["expected_noise_rms"], rel=0.25)


def test_saved_model_reloads_with_from_pretrained_and_stops_on_the_template_eos(tiny_trained):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_trained.output)
    tokenizer = AutoTokenizer.from_pretrained(tiny_trained.output)
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id
    assert json.loads((tiny_trained.output / "longsift_template.json").read_text())["name"] == "paper"


def test_the_model_learns_to_emit_eos(tiny_trained, pool_examples: list[Example], tmp_path: Path):
    """Trained on 8 short answers without NEFTune, greedy decoding reproduces them and stops before the limit."""
    from longsift.generate import generate

    short = sorted(pool_examples, key=lambda e: len(e.response))[:8]
    data = tmp_path / "short.jsonl"
    formats.write(short, data)
    overrides = {"epochs": 60, "learning_rate": 5e-3, "effective_batch_size": 8, "per_device_batch_size": 8,
                 "max_length": 512, "neftune_alpha": None, "logging_steps": 10}  # fmt: skip
    result = train(data, tmp_path / "run", model=str(tiny_trained.output / "tiny-base"), recipe="tiny-cpu",
                   overrides=overrides, log=lambda line: None)  # fmt: skip
    assert result.summary["neftune"]["hook_attached"] is False  # the check sees the difference
    gens = generate(tmp_path / "run", str(data), max_new_tokens=32, batch_size=8)
    finishes = [g.metadata["generation"]["finish_reasons"][0] for g in gens]
    assert finishes == ["stop"] * 8 and all(g.metadata["generation"]["new_tokens"][0] < 32 for g in gens)
    assert sum(g.output == e.response for g, e in zip(gens, short, strict=True)) >= 7  # 8/8 seen; 1 spare


# -- options: LoRA, QLoRA, gradient checkpointing, packing, padding-free, resume, multi-process ----------------------
def _quick(**overrides) -> TrainConfig:
    return resolve_config(
        "tiny-cpu", {"per_device_batch_size": 4, "effective_batch_size": 4, "max_steps": 2, **overrides}
    )


def test_lora_with_gradient_checkpointing_trains_adapters_and_saves_a_merged_model(
    tiny_trained, pool_examples: list[Example], tmp_path: Path
):
    from peft import PeftModel

    config = _quick(lora={"r": 4, "alpha": 8}, gradient_checkpointing=True)
    trainer, _, _ = build_trainer(pool_examples[:8], str(tiny_trained.output / "tiny-base"), config, tmp_path)
    assert isinstance(trainer.model, PeftModel)
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    assert 0 < trainable < sum(p.numel() for p in trainer.model.parameters()) / 10
    trainer.train()
    assert trainer.model.base_model.model.is_gradient_checkpointing

    from transformers import AutoModelForCausalLM

    formats.write(pool_examples[:8], tmp_path / "data.jsonl")
    run = train(tmp_path / "data.jsonl", tmp_path / "lora", model=str(tiny_trained.output / "tiny-base"),
                recipe="tiny-cpu", overrides={"lora": {"r": 4}, "max_steps": 1}, log=lambda line: None)  # fmt: skip
    assert not (run.output / "adapter_config.json").exists()  # merged into the base weights
    assert AutoModelForCausalLM.from_pretrained(run.output).config.model_type == "llama"


@pytest.mark.skipif(importlib.util.find_spec("bitsandbytes") is not None, reason="bitsandbytes installed")
def test_qlora_without_bitsandbytes_says_what_to_install(tiny_trained, alpaca_pool: Path, tmp_path: Path):
    with pytest.raises(MissingDependencyError, match="bitsandbytes"):
        train(alpaca_pool, tmp_path, model=str(tiny_trained.output / "tiny-base"),
              overrides={"lora": {}, "load_in_4bit": True, "k": 4}, log=lambda line: None)  # fmt: skip


def test_packing_and_padding_free(tiny_trained, pool_examples: list[Example], tmp_path: Path):
    base = str(tiny_trained.output / "tiny-base")
    packed, _, _ = build_trainer(pool_examples[:32], base, _quick(packing=True, max_length=256), tmp_path / "p")
    assert "seq_lengths" in packed.train_dataset.column_names and len(packed.train_dataset) < 32
    assert packed.train().global_step == 2
    flat, _, _ = build_trainer(pool_examples[:8], base, _quick(padding_free=True), tmp_path / "f")
    batch = next(iter(flat.get_train_dataloader()))
    assert batch["input_ids"].shape[0] == 1 and "position_ids" in batch and "attention_mask" not in batch
    assert flat.train().global_step == 2


def test_a_rerun_resumes_from_the_last_checkpoint(tiny_trained, pool_examples: list[Example], tmp_path: Path):
    data = tmp_path / "data.jsonl"
    formats.write(pool_examples[:16], data)
    options = {"save_strategy": "steps", "save_steps": 1, "save_total_limit": 2, "effective_batch_size": 8,
               "per_device_batch_size": 8}  # fmt: skip
    base = str(tiny_trained.output / "tiny-base")
    first = train(data, tmp_path / "run", model=base, recipe="tiny-cpu", overrides={**options, "max_steps": 2},
                  log=lambda line: None)  # fmt: skip
    assert not first.summary["training"]["resumed_from_checkpoint"]
    assert (tmp_path / "run" / "checkpoints" / "checkpoint-2").is_dir()
    second = train(data, tmp_path / "run", model=base, recipe="tiny-cpu", overrides={**options, "max_steps": 3},
                   log=lambda line: None)  # fmt: skip
    assert second.summary["training"]["resumed_from_checkpoint"]
    assert second.summary["training"]["global_steps"] == 3 and len(second.loss_history) == 1  # only step 3 ran


def test_cli_tiny_demo_trains_and_saves_a_loadable_model(cli, alpaca_pool: Path, tmp_path: Path):
    out = tmp_path / "tiny"
    result = cli("train", str(alpaca_pool), "--tiny", "--k", "16", "--max-steps", "2", "-o", str(out),
                 env={"OMP_NUM_THREADS": "1"})  # fmt: skip
    assert "trained on 16 examples (16 sequences), 2 steps" in result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["summary"]["world_size"] == 1 and manifest["options"]["config"]["max_steps"] == 2
    assert (out / "tiny-base").is_dir()
    assert (out / "model.safetensors").is_file() and (out / "longsift_template.json").is_file()


@pytest.mark.slow
def test_two_processes_with_torchrun(alpaca_pool: Path, tmp_path: Path):
    """The multi-process path accelerate/torchrun use, on CPU (gloo): one tiny base, accumulation per process."""
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")  # torch installs it
    out = tmp_path / "ddp"
    command = [torchrun, "--nproc_per_node", "2", "-m", "longsift", "train", str(alpaca_pool), "--tiny",
               "--k", "32", "--max-steps", "2", "--per-device-batch-size", "8", "-o", str(out)]  # fmt: skip
    repo = Path(__file__).resolve().parents[1]
    result = subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "PYTHONPATH": str(repo)})  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())["summary"]
    assert manifest["world_size"] == 2 and manifest["training"]["global_steps"] == 2
    assert result.stderr.count("built a tiny random Llama") == 1


def test_accelerate_config_files_are_valid():
    from accelerate.commands.config.config_args import ClusterConfig

    folder = Path(__file__).resolve().parents[1] / "recipes" / "accelerate"
    kinds = {ClusterConfig.from_yaml_file(str(path)).distributed_type.value for path in folder.glob("*.yaml")}
    assert kinds == {"FSDP", "DEEPSPEED"}


def test_documented_commands_name_real_recipes_and_config_files():
    import re

    repo = Path(__file__).resolve().parents[1]
    text = (repo / "recipes" / "README.md").read_text()
    recipes = set(re.findall(r"--recipe (\S+)", text))
    configs = set(re.findall(r"--config_file (\S+)", text))
    assert recipes and recipes <= set(recipe_names())
    assert configs and all((repo / path).is_file() for path in configs)
    assert "accelerate launch --config_file recipes/accelerate/fsdp.yaml -m longsift train" in text


def test_bf16_is_off_by_default_without_a_gpu(tmp_path: Path):
    import torch

    args, _ = to_training_arguments(TrainConfig(), tmp_path)
    assert args.bf16 is (torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    assert TrainConfig().trust_remote_code is False and args.trust_remote_code is False


def test_cli_tiny_model_builds_a_small_llama(cli, alpaca_pool: Path, tmp_path: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cli("tiny-model", "-o", str(tmp_path / "tiny"), "--data", str(alpaca_pool), "--k", "300")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "tiny")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "tiny")
    assert 0.5e6 < sum(p.numel() for p in model.parameters()) < 3e6
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token) == ("<s>", "</s>", "<pad>")
    assert tokenizer.chat_template and len(tokenizer) == model.config.vocab_size == 2048


def test_a_killed_tiny_build_leaves_no_folder_that_looks_like_a_model(tmp_path: Path) -> None:
    """SIGKILLed while saving, the build leaves only its staging folder; the next build replaces that."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from longsift.outputs import TEMP_PREFIX
    from longsift.tiny import build_tiny_model

    output = tmp_path / "tiny-base"
    script = (
        "import sys; from longsift.tiny import build_tiny_model; "
        "build_tiny_model(sys.argv[1], ['one text', 'another text'] * 50, vocab_size=300)"
    )
    process = subprocess.Popen([sys.executable, "-c", script, str(output)], env={**os.environ, "HF_HUB_OFFLINE": "1"})
    deadline = time.monotonic() + 120
    while not any(p.name.startswith(TEMP_PREFIX) for p in tmp_path.iterdir()):
        assert process.poll() is None and time.monotonic() < deadline, "the build ended before it could be killed"
        time.sleep(0.001)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not output.exists()  # the old build saved into `output` directly: config.json without a tokenizer
    build_tiny_model(output, ["one text", "another text"] * 50, vocab_size=300)
    assert {"config.json", "tokenizer.json"} <= {p.name for p in output.iterdir()}
    stale = [p for p in tmp_path.iterdir() if p.name.startswith(TEMP_PREFIX)]
    assert len(stale) <= 1  # the killed build's staging folder (a dead process's leftovers are harmless)
