"""A pairwise run over the paper's five test sets with a local `transformers` judge (a tiny random Llama).

Judgment quality is irrelevant here: most replies of a random model do not parse. What is tested is the
plumbing at full size: every prompt is judged in both orders or counted failed, nothing is lost, and a rerun
costs nothing. The default run judges a slice of every test set; the full 1,030 prompts run under -m slow.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import orjson
import pytest
from tiny_llm import build_model

from longsift.judge.pairwise import judge_pairwise
from longsift.llm.settings import LLMSettings
from longsift.records import Generation

TEST_SETS = {  # eval set -> (file, size)
    "koala": ("koala_test_set.jsonl", 180),
    "lima": ("lima_test.jsonl", 300),
    "sinstruct": ("sinstruct_test_set.jsonl", 252),
    "vicuna": ("vicuna_test_set.jsonl", 80),
    "wizardlm": ("wizardlm_test_set.jsonl", 218),
}


def load_test_prompts(data_dir: Path) -> list[tuple[str, str, str]]:
    """(eval_set, prompt_id, prompt) for the 1,030 prompts, read from each test set's own schema."""
    prompts = []
    for eval_set, (name, _) in TEST_SETS.items():
        for row_number, line in enumerate((data_dir / "test" / name).read_text(encoding="utf-8").splitlines()):
            row = json.loads(line)
            if eval_set == "koala":
                prompts.append((eval_set, row["id"], row["prompt"]))
            elif eval_set == "lima":
                prompts.append((eval_set, str(row_number), row["conversations"][0]))
            elif eval_set == "sinstruct":
                given = row["instances"][0]["input"]
                prompts.append(
                    (eval_set, row["id"], f"{row['instruction']} Input: {given}" if given else row["instruction"])
                )
            elif eval_set == "vicuna":
                prompts.append((eval_set, str(row["question_id"]), row["text"]))
            else:
                prompts.append((eval_set, str(row["idx"]), row["Instruction"]))
    return prompts


def write_model(path: Path, name: str, prompts: list[tuple[str, str, str]], answer) -> Path:  # type: ignore[no-untyped-def]
    rows = [Generation(pid, eval_set, name, (text,), (answer(text),)) for eval_set, pid, text in prompts]
    path.write_bytes(b"".join(orjson.dumps(g.to_dict()) + b"\n" for g in rows))
    return path


@pytest.fixture(scope="module")
def judge_model(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    return build_model(data_dir, tmp_path_factory.mktemp("tiny-judge"))


def run_local(data_dir: Path, judge_model: Path, tmp_path: Path, per_set: int | None) -> None:
    prompts = load_test_prompts(data_dir)
    assert {s: sum(p[0] == s for p in prompts) for s in TEST_SETS} == {s: n for s, (_, n) in TEST_SETS.items()}
    if per_set is not None:
        prompts = [p for s in TEST_SETS for p in [q for q in prompts if q[0] == s][:per_set]]
    a = write_model(tmp_path / "head.jsonl", "head", prompts, lambda text: " ".join(text.split()[:12]))
    b = write_model(tmp_path / "reversed.jsonl", "reversed", prompts, lambda text: " ".join(text.split()[::-1]))
    llm = LLMSettings(backend="transformers", model=str(judge_model), batch_size=32, progress=False)
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
    assert result.summary["calls"]["sent"] == 2 * len({text for _, _, text in prompts})
    for eval_set in TEST_SETS:
        row = result.summary["paper"][eval_set]
        assert (
            row["n"] == (per_set or TEST_SETS[eval_set][1]) and row["win"] + row["tie"] + row["lose"] == row["judged"]
        )

    rerun = judge_pairwise(a, b, tmp_path / "out", template="paper", llm=llm, max_tokens=12)
    assert rerun.summary["calls"]["sent"] == 0 and rerun.summary["paper"] == result.summary["paper"]


def test_local_transformers_judge_on_every_test_set(data_dir: Path, judge_model: Path, tmp_path: Path) -> None:
    run_local(data_dir, judge_model, tmp_path, per_set=8)


@pytest.mark.slow
def test_local_transformers_judge_on_all_1030_prompts(data_dir: Path, judge_model: Path, tmp_path: Path) -> None:
    run_local(data_dir, judge_model, tmp_path, per_set=None)
