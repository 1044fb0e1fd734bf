"""Open LLM benchmarks: task specs, score extraction and the paper-style average on hand-made lm_eval results;
then lm-evaluation-harness end to end on the tiny model with a local multiple-choice task (tests/data)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from longsift.errors import ConfigError
from longsift.judge import openllm

TASKS_DIR = Path(__file__).parent / "data" / "openllm_tasks"  # longsift_tiny_mc and longsift_tiny_mc_short


def results(task: str, **metrics: float) -> dict:
    """The shape lm_eval 0.4's simple_evaluate returns (metrics keyed 'name,filter')."""
    return {"results": {task: {f"{name},none": value for name, value in metrics.items()}}}


def test_task_specs_are_the_open_llm_leaderboard_v1() -> None:
    spec = {name: (t.harness_task, t.num_fewshot, t.metric, t.in_average) for name, t in openllm.TASKS.items()}
    assert spec == {
        "arc": ("arc_challenge", 25, "acc_norm", True),
        "mmlu": ("mmlu", 5, "acc", True),
        "truthfulqa": ("truthfulqa_mc2", 0, "acc", True),
        "winogrande": ("winogrande", 5, "acc", True),
        "hellaswag": ("hellaswag", 10, "acc_norm", False),
    }
    assert openllm.DEFAULT_TASKS == ("arc", "mmlu", "truthfulqa", "winogrande")


def test_average_excludes_hellaswag_and_uses_the_right_metrics() -> None:
    summary = openllm.summarize({
        "arc": results("arc_challenge", acc=0.50, acc_norm=0.54),
        "mmlu": results("mmlu", acc=0.46),
        "truthfulqa": results("truthfulqa_mc2", acc=0.40),
        "winogrande": results("winogrande", acc=0.74),
        "hellaswag": results("hellaswag", acc=0.60, acc_norm=0.80),
    })  # fmt: skip
    assert summary.scores == pytest.approx({"arc": 54, "mmlu": 46, "truthfulqa": 40, "winogrande": 74, "hellaswag": 80})
    assert summary.average == pytest.approx((54 + 46 + 40 + 74) / 4)
    assert summary.average_tasks == ["arc", "mmlu", "truthfulqa", "winogrande"]
    assert summary.average_with_hellaswag == pytest.approx((54 + 46 + 40 + 74 + 80) / 5)
    assert any("LIMA" in note for note in summary.notes)


def test_mmlu_is_the_unweighted_mean_of_its_subjects() -> None:
    table = {
        "mmlu": {"acc,none": 0.55},  # lm_eval's size-weighted group score
        "mmlu_humanities": {"acc,none": 0.9},
        "mmlu_abstract_algebra": {"acc,none": 0.30},
        "mmlu_anatomy": {"acc,none": 0.50},
        "mmlu_astronomy": {"acc,none": 0.70},
    }
    groups = {"mmlu": ["mmlu_humanities"], "mmlu_humanities": ["mmlu_abstract_algebra"]}
    score = openllm.task_score(openllm.TASKS["mmlu"], {"results": table, "group_subtasks": groups})
    assert score == pytest.approx(50.0)
    assert openllm.task_score(openllm.TASKS["mmlu"], {"mmlu": {"acc": 0.55}}) == pytest.approx(55.0)  # no subjects


def test_partial_runs_say_what_the_average_covers() -> None:
    summary = openllm.summarize(
        {"arc": results("arc_challenge", acc_norm=0.6), "hellaswag": results("hellaswag", acc_norm=0.7)}
    )
    assert summary.average == pytest.approx(60.0) and summary.average_with_hellaswag == pytest.approx(65.0)
    assert "mmlu, truthfulqa, winogrande not run" in summary.notes[0]
    only_hellaswag = openllm.summarize({"hellaswag": results("hellaswag", acc_norm=0.7)})
    assert only_hellaswag.average is None


def test_missing_metrics_and_tasks_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="'acc_norm'"):
        openllm.task_score(openllm.TASKS["arc"], results("arc_challenge", acc=0.5))
    with pytest.raises(ConfigError, match="no 'winogrande' entry"):
        openllm.task_score(openllm.TASKS["winogrande"], results("arc_challenge", acc=0.5))
    with pytest.raises(ConfigError, match="unknown Open LLM task"):
        openllm.resolve_tasks(["arc", "gsm8k"])


def test_cli_without_lm_eval_says_how_to_install(tmp_path: Path, cli) -> None:
    # lm_eval is a dev dependency: hide it as a missing package would be (the import itself fails)
    hidden = tmp_path / "hide" / "lm_eval"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'lm_eval'\", name='lm_eval')\n")
    path = os.pathsep.join(p for p in (str(hidden.parent), os.environ.get("PYTHONPATH", "")) if p)
    result = cli("openllm", str(tmp_path / "model"), "--k", "2", check=False, env={"PYTHONPATH": path})
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: `longsift openllm` needs the 'lm-eval' package: "
        "pip install 'longsift[openllm]' (or pip install lm-eval)"
    )


def test_cli_rejects_unknown_tasks_before_importing_anything(tmp_path: Path, cli) -> None:
    result = cli("openllm", str(tmp_path / "model"), "--tasks", "arc,gsm8k", check=False)
    assert result.returncode == 2 and "unknown Open LLM task(s) gsm8k" in result.stderr


def test_plain_turns_numpy_and_friends_into_json_types() -> None:
    value = {"acc": np.float64(0.5), "n": np.int64(3), "ok": np.bool_(True), "v": np.array([1.5, 2.0]),
             "t": (np.float32(0.25), "x"), 7: float("nan"), "f": len}  # fmt: skip
    assert openllm.plain(value) == {"acc": 0.5, "n": 3, "ok": True, "v": [1.5, 2.0], "t": [0.25, "x"], "7": None,
                                    "f": str(len)}  # fmt: skip
    assert json.loads(json.dumps(openllm.plain(value), allow_nan=False))["n"] == 3


def strict_json(path: Path) -> dict:
    """JSON as the standard library reads it, refusing NaN / Infinity (not JSON)."""
    return json.loads(path.read_text(), parse_constant=lambda name: pytest.fail(f"{name} in {path}"))


def test_local_tasks_end_to_end_on_the_tiny_model(tiny_trained, tmp_path: Path, cli) -> None:
    out, logs = tmp_path / "openllm.json", tmp_path / "samples"
    result = cli("openllm", str(tiny_trained.output), "--include-path", str(TASKS_DIR), "--tasks",
                 "longsift_tiny_mc,longsift_tiny_mc_short", "--num-fewshot", "2", "--seed", "3", "--log-samples",
                 str(logs), "-o", str(out), env={"HF_DATASETS_OFFLINE": "1"})  # fmt: skip
    written = strict_json(out)
    assert written["complete"] is True
    for task in ("longsift_tiny_mc", "longsift_tiny_mc_short"):
        samples = [json.loads(line) for line in (logs / f"{task}.jsonl").read_text().splitlines()]
        assert len(samples) == 6  # the test split
        # the score is lm_eval's acc_norm, and it is what the per-sample logs say
        assert written["summary"]["scores"][task] == pytest.approx(100 * np.mean([s["acc_norm"] for s in samples]))
        assert written["raw"][task]["n-shot"] == {task: 2}
        contexts = {s["arguments"][0][0] for s in samples}
        assert all(c.count("\n\n") == 2 for c in contexts)  # two shots before every question
    assert written["summary"]["average"] is None  # tasks of your own stay out of the paper's average
    assert "longsift_tiny_mc_short" in result.stdout
    from longsift.manifest import FolderInput, read_manifest

    manifest = read_manifest(tmp_path / "openllm.manifest.json")  # the one schema, like every writing command
    assert manifest is not None and manifest.command == "openllm" and manifest.outputs == {"output": str(out)}
    (model,) = manifest.inputs_with_role("model")
    assert isinstance(model, FolderInput) and manifest.options["seed"] == 3


def test_one_model_load_the_seed_reaches_the_shots_and_the_chat_template(tiny_trained, tmp_path: Path,
                                                                          monkeypatch) -> None:  # fmt: skip
    from lm_eval.models.huggingface import HFLM

    loads: list[str] = []
    original = HFLM.__init__

    def counting(self, *args, **kwargs):  # the real constructor, counted
        loads.append(str(kwargs.get("pretrained")))
        original(self, *args, **kwargs)

    monkeypatch.setattr(HFLM, "__init__", counting)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")

    def contexts(seed: int, chat: bool = False, tasks: tuple[str, ...] = ("longsift_tiny_mc",)) -> list[str]:
        folder = tmp_path / f"s{seed}{chat}{len(tasks)}"
        options = openllm.HarnessOptions([str(TASKS_DIR)], chat, folder, seed, num_fewshot=3)
        openllm.run_openllm(str(tiny_trained.output), list(tasks), limit=3, harness=options)
        rows = [json.loads(line) for line in (folder / "longsift_tiny_mc.jsonl").read_text().splitlines()]
        return [row["arguments"][0][0] for row in rows]

    first = contexts(1, tasks=("longsift_tiny_mc", "longsift_tiny_mc_short"))
    assert len(loads) == 1  # two tasks, one model
    assert contexts(1) == first  # the same seed, the same shots
    assert contexts(2) != first  # --seed reaches lm_eval's fewshot_random_seed
    chat = contexts(1, chat=True)
    assert all("<|im_start|>user" in c and "<|im_start|>assistant" in c for c in chat)  # the model's own template
    assert all("<|im_start|>" not in c for c in first)


def test_offline_default_tasks_end_in_one_line(tiny_trained, tmp_path: Path, cli) -> None:
    result = cli("openllm", str(tiny_trained.output), "--tasks", "arc", "--k", "1", "-o", str(tmp_path / "o.json"),
                 env={"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}, check=False)  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "'arc' (arc_challenge) needs its dataset from the Hugging Face hub" in line and "--include-path" in line
    assert not (tmp_path / "o.json").exists()  # nothing ran: no file, rather than an empty one


def test_unknown_local_task_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="lm_eval knows no task no_such_task"):
        openllm.run_openllm(str(tmp_path), ["no_such_task"], harness=openllm.HarnessOptions([str(TASKS_DIR)]))


def prompt_logprobs(model_dir: Path):
    """`longsift serve`'s /v1/completions responder on the tiny model (every prompt token's logprob, the top-1
    alternative, one greedy token), checking that lm_eval asks as it asks vLLM (echo, logprobs=1, max_tokens=1)."""
    from longsift.llm.server import engine_completions
    from longsift.models.hf import TransformersRunner

    respond = engine_completions(TransformersRunner(str(model_dir)))

    def checked(request) -> list[dict]:
        body = request.body
        assert body["echo"] is True and body["logprobs"] == 1 and body["max_tokens"] == 1
        return respond(request)

    return checked


def test_endpoint_variant_through_the_local_server(tiny_trained, tmp_path: Path, cli) -> None:
    """lm_eval's local-completions model against the project's server, answering with the tiny model's logprobs:
    the same scores as the in-process run of the same model."""
    from longsift.llm.server import LocalChatServer

    model = str(tiny_trained.output)
    common = ["--include-path", str(TASKS_DIR), "--tasks", "longsift_tiny_mc", "--num-fewshot", "1", "--k", "4"]
    with LocalChatServer(completions=prompt_logprobs(tiny_trained.output)) as server:
        cli("openllm", "--base-url", server.base_url, "--model-name", "tiny", "--tokenizer", model, *common,
            "--log-samples", str(tmp_path / "remote"), "-o", str(tmp_path / "remote.json"))  # fmt: skip
        assert len(server.log) == 4 * 4 and {e.outcome for e in server.log} == {"ok"}  # 4 questions x 4 choices
    cli("openllm", model, *common, "--log-samples", str(tmp_path / "local"), "-o", str(tmp_path / "local.json"))
    remote, local = strict_json(tmp_path / "remote.json"), strict_json(tmp_path / "local.json")
    assert remote["summary"]["scores"] == pytest.approx(local["summary"]["scores"])

    def logliks(folder: str) -> list[float]:
        rows = [json.loads(line) for line in (tmp_path / folder / "longsift_tiny_mc.jsonl").read_text().splitlines()]
        return [choice[0] for row in rows for choice in row["filtered_resps"]]

    assert logliks("remote") == pytest.approx(logliks("local"), abs=1e-3)
