"""The selection study: its recipes check whole before anything runs; the compare, judge, export, rank and report
steps of a study, on answers whose lengths decide the reference judge `longest`, give a ranking computed by
hand; the tiny CPU recipe runs end to end (slow: ~5 min on 2 busy cores, tiny training and IFD scoring)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from longsift.pipeline.recipe import load_recipe
from longsift.pipeline.runner import check_recipe, run_recipe
from tests.conftest import REPO

ARMS = ["longest", "random", "alpagasus", "ifd", "superfilter", "kcenter", "diverse"]
PROMPTS = [
    ("koala", "koala_0"),
    ("koala", "koala_1"),
    ("vicuna", "vicuna_0"),
    ("vicuna", "vicuna_1"),
    ("alpacaeval", "alpacaeval_0"),
]


@pytest.mark.parametrize("name", ["selection-study", "selection-study-tiny"])
def test_study_recipes_check_whole(name: str, tmp_path: Path, data_dir: Path) -> None:
    recipe = load_recipe(REPO / "recipes" / f"{name}.yaml")
    lookup = {"data": str(data_dir), "run": str(tmp_path), "name": recipe.name, "seed": "0"}
    check_recipe(recipe, tmp_path, lookup)  # every method, its options and every reference are known
    if name == "selection-study":
        methods = {s.name.removeprefix("select-"): s.options["method"] for s in recipe.stages if s.uses == "select"}
        assert list(methods) == ARMS
        judged = {s.options["a"] for s in recipe.stages if s.uses == "judge"}
        assert judged == {f"${{answers-{arm}}}" for arm in ARMS[1:]}
        assert all(s.options["b"] == "${answers-longest}" for s in recipe.stages if s.uses == "judge")
        assert {s.options["eval_set"] for s in recipe.stages if s.uses == "generate"} == {"pairwise,alpacaeval"}


def answers(path: Path, model: str, lengths: list[int]) -> str:
    rows = [{"prompt_id": pid, "eval_set": s, "model": model, "turns": [f"question {pid}"],
             "outputs": ["x" * n]} for (s, pid), n in zip(PROMPTS, lengths, strict=True)]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_study_steps_rank_arms_by_hand(tmp_path: Path, data_dir: Path) -> None:
    # longest judges by length: arm-a is longer on 4 prompts, shorter on 1 (winning score 1 + (4-1)/5 = 1.6);
    # arm-b ties 3 (equal lengths), loses 2 (1 + (0-2)/5 = 0.6)
    ref = answers(tmp_path / "ref.jsonl", "ref", [10, 10, 10, 10, 10])
    arm_a = answers(tmp_path / "a.jsonl", "arm-a", [20, 20, 20, 5, 20])
    arm_b = answers(tmp_path / "b.jsonl", "arm-b", [10, 10, 5, 5, 10])
    pool = f"{data_dir}/alpaca_subsets/alpaca_public_pool.jsonl.gz"
    judge = {"template": "paper", "llm": {"backend": "longest", "model": "longest"}}
    recipe = {
        "name": "study-steps", "run_dir": str(tmp_path / "run"),
        "stages": [
            {"name": "longest", "uses": "select", "with": {"source": pool, "k": 30}},
            {"name": "random", "uses": "select", "with": {"source": pool, "k": 30, "method": "random"}},
            {"name": "judge-a", "uses": "judge", "with": {"a": arm_a, "b": ref, **judge}},
            {"name": "judge-b", "uses": "judge", "with": {"a": arm_b, "b": ref, **judge}},
            {"name": "export-a", "uses": "alpacaeval-export", "with": {"generations": arm_a}},
            {"name": "compare", "uses": "compare", "with": {"pool": pool, "selections": ["${longest}", "${random}"],
                                                              "by": ["chars"], "embeddings": False}},
            {"name": "rank", "uses": "rank", "with": {"reference": "ref", "arms": ["arm-a", "arm-b", "arm-c"]}},
            {"name": "report", "uses": "report"},
        ],
    }  # fmt: skip
    file = tmp_path / "study.yaml"
    file.write_text(yaml.safe_dump(recipe))
    run_recipe(load_recipe(file))
    run = tmp_path / "run"
    ranking = json.loads((run / "study" / "ranking.json").read_text())
    order = [(a["arm"], a["winning_score"]) for a in ranking["arms"]]
    assert order == [("arm-a", 1.6), ("ref", 1.0), ("arm-b", 0.6)]
    a = ranking["arms"][0]
    assert (a["win_pct"], a["lose_pct"], a["judged"]) == (80.0, 20.0, 5)
    assert ranking["not_judged"] == ["arm-c"]
    compared = json.loads((run / "compare" / "compare" / "compare.json").read_text())
    assert compared["selections"][0]["matched"] == {"id": 30, "duplicate": 0}  # FastChat's identity_<row>
    exported = json.loads((run / "alpacaeval_outputs" / "export-a.json").read_text())
    assert [(e["generator"], e["output"]) for e in exported] == [("arm-a", "x" * 20)]
    html = (run / "report" / "report.html").read_text()
    assert 'id="study-ranking"' in html and 'id="compare-overlap"' in html


@pytest.mark.slow
def test_tiny_study_runs_end_to_end(tmp_path: Path, data_dir: Path, cli) -> None:
    run = tmp_path / "tiny"
    cli("run", str(REPO / "recipes" / "selection-study-tiny.yaml"), "-o", str(run), timeout=1800,
        env={"LONGSIFT_DATA": str(data_dir), "LONGSIFT_CACHE": str(tmp_path / "cache")})  # fmt: skip
    ranking = json.loads((run / "study" / "ranking.json").read_text())
    assert {a["arm"] for a in ranking["arms"]} == {"longest-24", "random-24", "ifd-24"}
    assert all(a["judged"] == 24 for a in ranking["arms"] if not a.get("reference"))  # 5 sets x 4 + AlpacaEval 4
    for arm in ("longest", "random", "ifd"):
        assert len(json.loads((run / "alpacaeval_outputs" / f"export-{arm}.json").read_text())) == 4
    compared = json.loads((run / "compare" / "compare" / "compare.json").read_text())
    assert all(d["radius"] is not None for n, d in compared["diversity"].items() if n != "pool")
    html = (run / "report" / "report.html").read_text()
    assert 'id="study-ranking"' in html and 'id="compare-diversity"' in html
    again = cli("run", str(REPO / "recipes" / "selection-study-tiny.yaml"), "-o", str(run),
                env={"LONGSIFT_DATA": str(data_dir), "LONGSIFT_CACHE": str(tmp_path / "cache")})  # fmt: skip
    assert "ran 0 stage(s)" in " ".join(again.stderr.split())
