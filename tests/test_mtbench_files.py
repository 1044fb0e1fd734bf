"""MT-Bench files in FastChat's layout, and FastChat's single-grade scoring, on real and hand-made files."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from longsift.errors import DataError
from longsift.judge import mtbench_files as mt


def test_read_the_shared_fastchat_files(data_dir: Path) -> None:
    questions = mt.read_questions(data_dir / "mt_bench/question.jsonl")
    assert len(questions) == 80 and all(len(q.turns) == 2 for q in questions)
    assert Counter(q.category for q in questions) == dict.fromkeys(
        ["writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities"], 10
    )
    assert sum(q.reference is not None for q in questions) == 39

    references = mt.read_answers(data_dir / "mt_bench/reference_answer_gpt-4.jsonl")
    assert len(references) == 30 and {a.model_id for a in references.values()} == {"gpt-4"}
    category = {q.question_id: q.category for q in questions}
    assert {category[qid] for qid in references} == {"math", "reasoning", "coding"}
    assert references[101].turns[0].startswith("If you have just overtaken the second person")

    prompts = mt.read_judge_prompts(data_dir / "mt_bench/judge_prompts.jsonl")
    assert len(prompts) == 8
    for q in questions:
        for multi_turn in (False, True):
            prompt = prompts[mt.single_prompt_name(q.category, multi_turn)]
            assert prompt.type == "single" and prompt.output_format == "[[rating]]"
            assert ("{ref_answer_1}" in prompt.prompt_template) == (q.question_id in references)
            assert ("{answer_2}" in prompt.prompt_template) == multi_turn


def judgment(question_id: int, model: str, turn: int, score: float) -> mt.SingleJudgment:
    prompt = "single-v1" if turn == 1 else "single-v1-multi-turn"
    return mt.SingleJudgment(question_id, model, ("gpt-4", prompt), f"prompt {question_id}", f"Rating: [[{score}]]",
                             score, turn, 1700000000.0 + question_id)  # fmt: skip


HAND_MADE = [
    judgment(81, "a", 1, 8), judgment(81, "a", 2, 6), judgment(82, "a", 1, -1), judgment(82, "a", 2, 3),
    judgment(101, "a", 1, -1), judgment(101, "a", 2, 4), judgment(111, "a", 1, 10),
    judgment(81, "b", 1, 7.5), judgment(81, "b", 2, 9),
]  # fmt: skip


def test_judgment_file_round_trip_in_fastchat_layout(tmp_path: Path) -> None:
    path = tmp_path / "model_judgment" / "gpt-4_single.jsonl"
    assert mt.write_judgments(HAND_MADE[:4], path) == 4
    assert mt.write_judgments(HAND_MADE[4:], path) == 5  # appends, as FastChat does while judging
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert list(lines[0]) == ["question_id", "model", "judge", "user_prompt", "judgment", "score", "turn", "tstamp"]
    assert lines[0]["judge"] == ["gpt-4", "single-v1"]
    assert mt.read_judgments(path) == HAND_MADE
    mt.write_judgments(HAND_MADE[:1], path, append=False)
    assert len(mt.read_judgments(path)) == 1


def test_scores_by_hand(data_dir: Path) -> None:
    questions = mt.read_questions(data_dir / "mt_bench/question.jsonl")
    scores = mt.score_judgments(HAND_MADE, questions)
    a, b = scores["a"], scores["b"]
    assert a.turn_scores == pytest.approx({1: 9.0, 2: 13 / 3})
    assert a.overall == pytest.approx(31 / 5)  # the mean of all kept judgments, not of the two turn means
    assert a.categories == pytest.approx({"math": 10.0, "reasoning": 4.0, "writing": 17 / 3})
    assert (a.n_judged, a.n_failed) == (5, 2)
    assert b.turn_scores == pytest.approx({1: 7.5, 2: 9.0}) and b.overall == pytest.approx(8.25)
    assert mt.score_judgments(HAND_MADE)["a"].categories == {}  # categories need the questions


def test_scores_match_fastchat_show_result_computation(tmp_path: Path) -> None:
    import pandas

    path = tmp_path / "gpt-4_single.jsonl"
    mt.write_judgments(HAND_MADE, path)
    # FastChat's show_result.py --mode single, step by step
    df = pandas.read_json(path, lines=True)[["model", "score", "turn"]]
    df = df[df["score"] != -1]
    first = df[df["turn"] == 1].groupby(["model", "turn"]).mean()
    second = df[df["turn"] == 2].groupby(["model", "turn"]).mean()
    average = df[["model", "score"]].groupby(["model"]).mean()
    ours = mt.score_judgments(mt.read_judgments(path))
    for model in ("a", "b"):
        assert ours[model].turn_scores[1] == pytest.approx(first.loc[(model, 1), "score"])
        assert ours[model].turn_scores[2] == pytest.approx(second.loc[(model, 2), "score"])
        assert ours[model].overall == pytest.approx(average.loc[model, "score"])


def test_bad_files_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "question.jsonl"
    path.write_text('{"question_id": 1, "category": "x", "turns": ["a", "b"]}\n{"question_id": 2}\n')
    with pytest.raises(DataError, match=r"question.jsonl:2.*KeyError"):
        mt.read_questions(path)
    path.write_text("not json\n")
    with pytest.raises(DataError, match=r":1: invalid JSON"):
        mt.read_judgments(path)
    with pytest.raises(DataError, match="not found"):
        mt.read_answers(tmp_path / "missing.jsonl")
