"""A pairwise run over the paper's five test sets with a local `transformers` judge (a tiny random Llama).

Judgment quality is irrelevant here: most replies of a random model do not parse. What is tested is the
plumbing at full size: every prompt is judged in both orders or counted failed, nothing is lost, and a rerun
costs nothing. The default run judges a slice of every test set; the full 1,030 prompts run under -m slow.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from longsift.evalsets import load_eval_set
from longsift.generations import write_generations
from longsift.judge.pairwise import generations_by_prompt, judge_pairwise, judge_question
from longsift.llm.settings import LLMSettings
from longsift.records import EvalPrompt, Generation
from longsift.tiny import build_tiny_model

SIZES = {"koala": 180, "lima": 300, "sinstruct": 252, "vicuna": 80, "wizardlm": 218}


def write_model(path: Path, name: str, prompts: list[EvalPrompt], answer) -> Path:  # type: ignore[no-untyped-def]
    rows = [Generation(p.id, p.eval_set, name, p.turns, (answer(p.instruction),), dict(p.metadata)) for p in prompts]
    write_generations(rows, path)
    return path


@pytest.fixture(scope="module")
def judge_model(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    texts = [p.instruction for p in load_eval_set("pairwise", data_dir)]
    sizes = dict(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64)
    return build_tiny_model(tmp_path_factory.mktemp("tiny-judge"), texts, vocab_size=1024, **sizes)


def run_local(data_dir: Path, judge_model: Path, tmp_path: Path, per_set: int | None) -> None:
    prompts = load_eval_set("pairwise", data_dir)
    assert {s: sum(p.eval_set == s for p in prompts) for s in SIZES} == SIZES and len(prompts) == 1030
    if per_set is not None:
        prompts = [p for s in SIZES for p in [q for q in prompts if q.eval_set == s][:per_set]]
    a = write_model(tmp_path / "head.jsonl", "head", prompts, lambda text: " ".join(text.split()[:12]))
    b = write_model(tmp_path / "reversed.jsonl", "reversed", prompts, lambda text: " ".join(text.split()[::-1]))
    llm = LLMSettings(backend="transformers", model=str(judge_model), batch_size=8, progress=False)
    started = time.perf_counter()
    result = judge_pairwise(a, b, tmp_path / "out", template="paper", llm=llm, max_tokens=12)
    elapsed = time.perf_counter() - started
    print(f"\n{len(prompts)} prompts, {2 * len(prompts)} local judgments in {elapsed:.1f}s")

    total = result.summary["paper"]["all"]
    assert total["n"] == len(prompts) and total["judged"] + total["failed"] == len(prompts)
    lines = (tmp_path / "out" / "judgments.jsonl").read_bytes().splitlines()
    assert len(lines) == 2 * len(prompts)  # every prompt, both orders: nothing lost
    failed = {(f["eval_set"], f["prompt_id"], f["order"]) for f in result.summary["failed"]}
    for judgment in result.judgments:
        assert (judgment.status == "failed") == ((judgment.eval_set, judgment.prompt_id, judgment.order) in failed)
        assert judgment.raw == "" or isinstance(judgment.raw, str)
    # identical prompts (the test sets share some) give identical requests: one call serves them all
    calls = result.summary["calls"]
    shown_a, shown_b = generations_by_prompt(a), generations_by_prompt(b)
    distinct = {(judge_question(g), g.output, shown_b[key].output) for key, g in shown_a.items()}
    assert calls["sent"] == 2 * len(distinct), calls
    # a tiny random judge's replies are noise or cut off at max_tokens (a call failure: `truncated`), never answers
    assert calls["ok"] + calls["parse_failed"] + calls["call_failed"] == 2 * len(prompts), calls
    cut = [j for j in result.judgments if j.error and j.error.startswith("call failed")]
    assert len(cut) == calls["call_failed"] and all(j.error.startswith("call failed: truncated") for j in cut)
    for eval_set in SIZES:
        row = result.summary["paper"][eval_set]
        assert row["n"] == (per_set or SIZES[eval_set]) and row["win"] + row["tie"] + row["lose"] == row["judged"]

    rerun = judge_pairwise(a, b, tmp_path / "out", template="paper", llm=llm, max_tokens=12)
    assert rerun.summary["calls"]["sent"] == 0, rerun.summary["calls"]
    assert rerun.summary["paper"] == result.summary["paper"]


def test_local_transformers_judge_on_every_test_set(data_dir: Path, judge_model: Path, tmp_path: Path) -> None:
    run_local(data_dir, judge_model, tmp_path, per_set=8)


@pytest.mark.slow
def test_local_transformers_judge_on_all_1030_prompts(data_dir: Path, judge_model: Path, tmp_path: Path) -> None:
    run_local(data_dir, judge_model, tmp_path, per_set=None)
