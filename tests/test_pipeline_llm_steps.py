"""The recipe steps `score`, `mtbench` and `alpacaeval`, each run by a real recipe (LLM calls over real HTTP to the
project's local OpenAI-protocol server, scripted), asserting what each step writes into the run folder."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from conftest import DATA
from runfixture import MODEL_A, alpacaeval_inputs, mtbench_answers

from longsift.llm.server import LocalChatServer, ServedRequest
from longsift.pipeline import load_recipe, run_recipe

# instruction -> the rater's reply; "garbled" has no score, so its record fails and keeps no score
RATINGS = {"Name a colour.": "4.5\nAccurate.", "Add 2 and 2.": "Score: 2\nWrong sum.", "Say hi.": "garbled"}
INSTRUCTION = re.compile(r"###Instruction:\n(.*?)\n\n### Input:", re.S)


def write_recipe(tmp_path: Path, stages: list[dict[str, Any]]) -> Path:
    path = tmp_path / "recipe.yaml"
    recipe = {"name": "steps", "run_dir": str(tmp_path / "run"), "data_dir": str(DATA), "stages": stages}
    path.write_text(yaml.safe_dump(recipe))
    return path


def alpaca_records(path: Path) -> Path:
    rows = [{"instruction": text, "input": "", "output": f"answer to {text}"} for text in RATINGS]
    path.write_bytes(orjson.dumps(rows))
    return path


def rater(request: ServedRequest) -> str:
    return RATINGS[INSTRUCTION.search(request.prompt).group(1)]  # type: ignore[union-attr]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_score_step_rates_every_record_and_sends_its_max_tokens(tmp_path: Path) -> None:
    source = alpaca_records(tmp_path / "pool.json")
    with LocalChatServer(rater) as server:
        llm = {"base_url": server.base_url, "model": "rater", "max_attempts": 1}
        stage = {"input": str(source), "name": "rated", "max_tokens": 77, "llm": llm}
        result = run_recipe(load_recipe(write_recipe(tmp_path, [{"name": "score", "uses": "score", "with": stage}])))
        bodies = [entry.request.body for entry in server.log.entries()]
    assert result.ran == ["score"]
    assert len(bodies) == 3 and {body["max_tokens"] for body in bodies} == {77}  # the step's option is sent
    assert {body["model"] for body in bodies} == {"rater"}
    records = read_jsonl(tmp_path / "run" / "score" / "rated.jsonl")
    metadata = [record["metadata"] for record in records]
    assert [m.get("score") for m in metadata] == [4.5, 2.0, None]  # input order, the failure keeps no score
    assert [m["score_status"] for m in metadata] == ["scored", "scored", "failed"]
    assert metadata[2]["score_error"] and "score" in metadata[2]["score_error"]
    assert [r["messages"][-1]["content"] for r in records] == [f"answer to {text}" for text in RATINGS]
    with LocalChatServer(rater) as server:  # a rerun is skipped: nothing asked again
        again = run_recipe(load_recipe(write_recipe(tmp_path, [{"name": "score", "uses": "score", "with": stage}])))
        assert again.skipped == ["score"] and len(server.log) == 0


MT_GRADES = {(81, 1): 7, (81, 2): 5, (111, 1): 3, (111, 2): None}  # None: no rating in the reply
MT_MARK = re.compile(r"answer (\d+) turn (\d)")


def mt_judge(request: ServedRequest) -> str:
    marks = [(int(q), int(t)) for q, t in MT_MARK.findall(request.prompt)]
    grade = MT_GRADES[max(marks, key=lambda mark: mark[1])]  # a turn-2 prompt shows both turns
    return "No verdict." if grade is None else f"Fine.\nRating: [[{grade}]]"


def test_mtbench_step_grades_the_answers_into_the_run(tmp_path: Path) -> None:
    answers = mtbench_answers(tmp_path / "inputs" / "mt.jsonl")
    with LocalChatServer(mt_judge) as server:
        llm = {"base_url": server.base_url, "model": "gpt-4", "max_attempts": 1}
        stage = {"answers": str(answers), "llm": llm, "max_tokens": 300}
        run_recipe(load_recipe(write_recipe(tmp_path, [{"name": "mtbench", "uses": "mtbench", "with": stage}])))
        bodies = [entry.request.body for entry in server.log.entries()]
    assert len(bodies) == 4 and {body["max_tokens"] for body in bodies} == {300}
    scores = orjson.loads((tmp_path / "run" / "mtbench" / f"{MODEL_A}.json").read_bytes())
    assert scores["model"] == MODEL_A
    assert (scores["turn_1"], scores["turn_2"]) == (5.0, 5.0)
    assert scores["overall"] == pytest.approx((7 + 5 + 3) / 3)
    assert scores["categories"]["writing"] == {"score": 6.0, "turn_1": 7.0, "turn_2": 5.0}
    assert scores["categories"]["math"]["turn_1"] == 3.0
    assert (scores["n_judged"], scores["n_failed"]) == (3, 1)
    assert [(f["question_id"], f["turn"]) for f in scores["failed"]] == [(111, 2)]


def test_alpacaeval_step_scores_annotations_as_the_leaderboard(tmp_path: Path) -> None:
    alpaca_7b, synthetic, table = alpacaeval_inputs(tmp_path / "inputs", DATA)
    stages = [
        {"name": "alpaca-7b", "uses": "alpacaeval", "with": {"annotations": str(alpaca_7b)}},
        {"name": "lc", "uses": "alpacaeval", "with": {"annotations": str(synthetic), "difficulty": str(table),
                                                      "model_name": "my-model"}},
    ]  # fmt: skip
    run_recipe(load_recipe(write_recipe(tmp_path, stages)))
    board = DATA / "alpaca_eval/leaderboards/alpaca_eval_2__weighted_alpaca_eval_gpt4_turbo_leaderboard.csv"
    with board.open(newline="") as handle:
        expected = next(row for row in csv.DictReader(handle) if row[""] == "alpaca-7b")
    plain = orjson.loads((tmp_path / "run" / "alpacaeval" / "alpaca-7b.json").read_bytes())
    assert plain["model"] == "alpaca-7b" and plain["baseline"] == "gpt4_1106_preview"
    assert plain["win_rate"] == pytest.approx(float(expected["win_rate"]), abs=1e-3)
    assert plain["n_total"] == int(expected["n_total"]) and plain["length_controlled_winrate"] is None
    controlled = orjson.loads((tmp_path / "run" / "alpacaeval" / "my-model.json").read_bytes())
    assert controlled["model"] == "my-model"  # the recipe's name, not the annotations' generator
    assert 0 < controlled["length_controlled_winrate"] < 100


def test_llm_steps_take_their_keys_and_defaults_from_the_stage_models(tmp_path: Path, capsys) -> None:
    from longsift.pipeline.steps import check_stage, step_model
    from longsift.refine.options import ScoreOptions

    assert step_model("score") is not None and step_model("score").model_fields["max_tokens"].default is None
    assert ScoreOptions().max_prompt_tokens == 2048  # the step's default is the stage's, from one place
    typo = check_stage("score", "s", {"input": "x", "max_tokns": 3}, tmp_path)
    assert len(typo) == 1 and "unknown options ['max_tokns']" in typo[0]
    cli_only = check_stage("mtbench", "m", {"answers": "x", "data_dir": "/elsewhere"}, tmp_path)
    assert len(cli_only) == 1 and "data_dir" in cli_only[0]  # a CLI flag, not a recipe key: refused, not ignored
    assert not check_stage("refine", "r", {"input": "x", "llm": {"model": "m", "batch_size": 4}}, tmp_path)
    assert "warning: stage 'r': llm: key 'batch_size' is deprecated, use 'local_batch_size'" in capsys.readouterr().err
    assert not check_stage("alpacaeval", "a", {"annotations": "x", "model": "old"}, tmp_path)
    assert "key 'model' is deprecated, use 'model_name'" in capsys.readouterr().err
    bad = check_stage("judge", "j", {"a": "x", "b": "y", "resample": -1}, tmp_path)
    assert bad and "--resample must be 0 or more" in bad[0]
