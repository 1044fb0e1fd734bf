"""MT-Bench single grading: FastChat's prompt choice, exact prompt text, references, answer files."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from longsift.errors import ConfigError, DataError, ParseError
from longsift.judge.mtbench_files import Answer, read_answers, read_judge_prompts, read_questions
from longsift.judge.mtbench_grade import grade_items, parse_rating, read_model_answers, references
from longsift.records import Generation


@pytest.fixture(scope="module")
def bench(data_dir: Path):  # type: ignore[no-untyped-def]
    root = data_dir / "mt_bench"
    questions = read_questions(root / "question.jsonl")
    return (
        questions,
        read_judge_prompts(root / "judge_prompts.jsonl"),
        read_answers(root / "reference_answer_gpt-4.jsonl"),
    )


def answers_for(questions) -> dict[int, Answer]:  # type: ignore[no-untyped-def]
    return {
        q.question_id: Answer(q.question_id, "m", (f"first {{x}} {q.question_id}", f"second {q.question_id}"))
        for q in questions
    }


def test_every_question_gets_both_turns_with_fastchats_prompt_choice(bench) -> None:  # type: ignore[no-untyped-def]
    questions, prompts, ref_answers = bench
    items, unanswered = grade_items(questions, answers_for(questions), prompts, references(questions, ref_answers))
    assert len(items) == 160 and unanswered == []
    names = {(i.question.category, i.turn): i.prompt.name for i in items}
    assert names[("writing", 1)] == "single-v1" and names[("writing", 2)] == "single-v1-multi-turn"
    for category in ("math", "reasoning", "coding"):
        assert names[(category, 1)] == "single-math-v1" and names[(category, 2)] == "single-math-v1-multi-turn"
    assert sum(i.reference is not None for i in items) == 60  # 30 questions x 2 turns


def test_prompts_are_fastchats_text(bench, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    questions, prompts, ref_answers = bench
    raw = {row["name"]: row for row in map(json.loads, (data_dir / "mt_bench/judge_prompts.jsonl").open())}
    refs_raw = {
        row["question_id"]: row for row in map(json.loads, (data_dir / "mt_bench/reference_answer_gpt-4.jsonl").open())
    }
    answers = answers_for(questions)
    items, _ = grade_items(questions, answers, prompts, references(questions, ref_answers))
    by_key = {(i.question.question_id, i.turn): i for i in items}

    writing = by_key[(81, 1)]
    q81 = next(q for q in questions if q.question_id == 81)
    expected = raw["single-v1"]["prompt_template"].format(question=q81.turns[0], answer=answers[81].turns[0])
    (system, user) = writing.messages()
    assert (system.role, system.content) == ("system", "You are a helpful assistant.")
    assert user.content == expected and "first {x} 81" in user.content

    math2 = by_key[(111, 2)]
    q111 = next(q for q in questions if q.question_id == 111)
    ref = refs_raw[111]["choices"][0]["turns"]
    expected = raw["single-math-v1-multi-turn"]["prompt_template"].format(
        question_1=q111.turns[0], question_2=q111.turns[1], answer_1=answers[111].turns[0],
        answer_2=answers[111].turns[1], ref_answer_1=ref[0], ref_answer_2=ref[1],
    )  # fmt: skip
    system, user = math2.messages()
    assert system.content == raw["single-math-v1-multi-turn"]["system_prompt"]
    assert user.content == expected


def test_inline_references_are_preferred_when_asked(bench) -> None:  # type: ignore[no-untyped-def]
    questions, _, ref_answers = bench
    gpt4 = references(questions, ref_answers, "gpt-4")
    inline = references(questions, ref_answers, "inline")
    assert set(gpt4) == set(inline) and len(gpt4) == 30
    assert inline[111][0] == "Area is 3" and gpt4[111][0] != inline[111][0]
    assert inline[123] == gpt4[123]  # 123 has no inline reference: the GPT-4 one stays
    with pytest.raises(ConfigError, match="no reference answer"):
        references(questions, {}, "gpt-4")


def test_unanswered_questions_are_listed(bench) -> None:  # type: ignore[no-untyped-def]
    questions, prompts, ref_answers = bench
    answers = answers_for(questions)
    del answers[81], answers[130]
    items, unanswered = grade_items(questions, answers, prompts, references(questions, ref_answers), turns=(1,))
    assert unanswered == [81, 130] and len(items) == 78


def test_answer_files_in_both_layouts(tmp_path: Path, bench) -> None:  # type: ignore[no-untyped-def]
    fastchat = tmp_path / "vicuna.jsonl"
    fastchat.write_text(
        json.dumps(
            {"question_id": 81, "answer_id": "x", "model_id": "vicuna", "choices": [{"index": 0, "turns": ["a", "b"]}]}
        )
        + "\n"
    )
    assert read_model_answers(fastchat)[81].turns == ("a", "b")
    ours = tmp_path / "gen.jsonl"
    rows = [
        Generation("81", "mtbench", "tiny", ("q1", "q2"), ("a1", "a2")),
        Generation("koala_0", "koala", "tiny", ("q",), ("a",)),  # other eval sets are skipped
    ]
    ours.write_bytes(b"".join(orjson.dumps(g.to_dict()) + b"\n" for g in rows))
    answers = read_model_answers(ours)
    assert list(answers) == [81] and answers[81].model_id == "tiny" and answers[81].turns == ("a1", "a2")
    assert read_model_answers(ours, model="renamed")[81].model_id == "renamed"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt_id": "x", "eval_set": "mtbench", "model": "m", "turns": [], "outputs": []}\n')
    with pytest.raises(DataError, match="bad.jsonl:1"):
        read_model_answers(bad)


@pytest.mark.parametrize(
    "reply, rating",
    [("Rating: [[8]]", 8.0), ("[[8.5]] then [[3]]", 8.5), ("Rating: [7]", 7.0), ("[[08]]", 8.0), ("[[10]]", 10.0),
     ("[[9.]]", 9.0), ("no double [[x]] but [6]", 6.0)],
)  # fmt: skip
def test_ratings_are_read_as_fastchat_reads_them(reply: str, rating: float) -> None:
    assert parse_rating(reply) == rating


@pytest.mark.parametrize(
    "reply", ["Rating: [[" + "9" * 5000 + "]]", "[[11]]", "[[" + "1" * 17 + "]]", "nothing here", "[[" + "9" * 10**6]
)
def test_unreadable_or_huge_ratings_are_parse_failures_never_crashes(reply: str) -> None:
    with pytest.raises(ParseError):
        parse_rating(reply)
