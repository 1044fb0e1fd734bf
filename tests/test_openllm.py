"""Open LLM benchmarks: task specs, score extraction and the paper-style average on hand-made lm_eval results."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from longsift.errors import ConfigError
from longsift.judge import openllm


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


@pytest.mark.skipif(importlib.util.find_spec("lm_eval") is not None, reason="lm_eval is installed")
def test_cli_without_lm_eval_says_how_to_install(tmp_path: Path, cli) -> None:
    result = cli("openllm", str(tmp_path / "model"), "--limit", "2", check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: `longsift openllm` needs the 'lm-eval' package: "
        "pip install 'longsift[openllm]' (or pip install lm-eval)"
    )


def test_cli_rejects_unknown_tasks_before_importing_anything(tmp_path: Path, cli) -> None:
    result = cli("openllm", str(tmp_path / "model"), "--tasks", "arc,gsm8k", check=False)
    assert result.returncode == 2 and "unknown Open LLM task(s) gsm8k" in result.stderr
