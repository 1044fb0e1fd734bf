"""Built-in eval sets read from the shared data: full counts, stable ids, the self-instruct input, MT-Bench turns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from longsift.errors import DataError, UnknownNameError
from longsift.evalsets import EXPECTED_COUNTS, PAIRWISE_SETS, data_root, load_eval_set, prompts_from_file


@pytest.mark.parametrize("name", sorted(EXPECTED_COUNTS))
def test_each_built_in_set_has_its_full_count_and_unique_ids(name: str, data_dir: Path):
    prompts = load_eval_set(name, data_dir)
    assert len(prompts) == EXPECTED_COUNTS[name]
    assert len({p.id for p in prompts}) == len(prompts)
    assert {p.eval_set for p in prompts} == {name}
    assert all(p.turns and all(t.strip() for t in p.turns) for p in prompts)


def test_pairwise_is_the_papers_1030_prompts_in_set_order(data_dir: Path):
    prompts = load_eval_set("pairwise", data_dir)
    assert len(prompts) == 1030
    assert [p.eval_set for p in prompts] == [s for s in PAIRWISE_SETS for _ in range(EXPECTED_COUNTS[s])]
    first_koala = json.loads((data_dir / "test" / "koala_test_set.jsonl").read_text().splitlines()[0])
    assert prompts[0].id == "koala_0" and prompts[0].turns == (first_koala["prompt"],)
    assert load_eval_set("koala,vicuna", data_dir)[-1].id == "vicuna_79"


def test_self_instruct_appends_the_instance_input(data_dir: Path):
    prompts = load_eval_set("sinstruct", data_dir)
    with_input = [p for p in prompts if p.metadata["input"]]
    assert len(with_input) == 208
    p = with_input[0]
    assert p.turns[0] == f"{p.metadata['instruction']}\n\n{p.metadata['input']}"
    assert load_eval_set("self-instruct", data_dir)[0] == prompts[0]


def test_mtbench_has_two_turns_and_question_ids(data_dir: Path):
    prompts = load_eval_set("mtbench", data_dir)
    assert all(len(p.turns) == 2 for p in prompts)
    assert prompts[0].id == "mtbench_81" and prompts[0].metadata["question_id"] == 81
    assert {p.metadata["category"] for p in prompts} >= {"writing", "math", "coding"}


def test_alpacaeval_keeps_dataset_names(data_dir: Path):
    prompts = load_eval_set("alpacaeval", data_dir)
    assert prompts[0].id == "alpacaeval_0" and prompts[0].metadata["dataset"] == "helpful_base"
    counts: dict[str, int] = {}
    for p in prompts:
        counts[p.metadata["dataset"]] = counts.get(p.metadata["dataset"], 0) + 1
    assert counts == {"selfinstruct": 252, "oasst": 188, "koala": 156, "helpful_base": 129, "vicuna": 80}


def test_data_root_comes_from_argument_then_environment(monkeypatch: pytest.MonkeyPatch, data_dir: Path, tmp_path):
    monkeypatch.setenv("LONGSIFT_DATA", str(data_dir))
    assert len(load_eval_set("vicuna")) == 80
    assert data_root(tmp_path) == tmp_path
    with pytest.raises(DataError, match="LONGSIFT_DATA"):
        load_eval_set("vicuna", tmp_path)


def test_unknown_set_is_a_clear_error(data_dir: Path):
    with pytest.raises(UnknownNameError, match="mtbench"):
        load_eval_set("mt-bench", data_dir)


def test_a_training_file_can_serve_as_prompts(data_dir: Path):
    prompts = prompts_from_file(data_dir / "lima" / "fastchat_lima_1k.json")
    assert len(prompts) == 1000
    assert prompts[0].id == "fastchat_lima_1k_0" and "instruction" in prompts[0].metadata
    assert load_eval_set(str(data_dir / "lima" / "fastchat_lima_1k.json"))[5] == prompts[5]
