"""MT-Bench single grading end to end against the real local OpenAI-protocol server with scripted ratings."""

from __future__ import annotations

import json
import re
from pathlib import Path

import orjson
import pytest

from longsift.judge.mtbench_files import read_judgments
from longsift.judge.mtbench_grade import judge_mtbench
from longsift.llm.server import LocalChatServer, ServedRequest
from longsift.llm.settings import LLMSettings
from longsift.records import Generation

# (question_id, turn) -> the judge's reply
SCRIPT = {
    (81, 1): "Vivid and engaging.\nRating: [[8]]", (81, 2): "Follows the constraint.\nRating: [[6]]",
    (82, 1): "Good. Rating: [[9]]", (82, 2): "The second answer is fine, I think.",  # no rating: failed
    (101, 1): "Wrong place.\nRating: [[3]]", (101, 2): "Rating: [[5]]",
    (111, 1): "Correct area.\nRating: [[8.5]]", (111, 2): "Rating: [7]",  # FastChat's single-bracket fallback
    (131, 1): "Rating: [[10]]", (131, 2): "Rating: [[2]]",
}  # fmt: skip
MARK = re.compile(r"answer (\d+) turn (\d)")


def scripted(request: ServedRequest) -> str:
    marks = {(int(q), int(t)) for q, t in MARK.findall(request.prompt)}
    return SCRIPT[max(marks, key=lambda m: m[1])]  # a turn-2 prompt shows both answers


def fastchat_answers(path: Path, model: str) -> Path:
    rows = [
        {"question_id": q, "answer_id": f"id{q}", "model_id": model, "tstamp": 0.0,
         "choices": [{"index": 0, "turns": [f"answer {q} turn 1", f"answer {q} turn 2"]}]}
        for q in sorted({q for q, _ in SCRIPT})
    ]  # fmt: skip
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def settings(server: LocalChatServer) -> LLMSettings:
    return LLMSettings(base_url=server.base_url, model="judge-m", concurrency=4, max_attempts=2, progress=False)


def test_scores_per_turn_category_and_overall_with_failures_apart(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "mt"
    answers = fastchat_answers(tmp_path / "vicuna.jsonl", "vicuna")
    with LocalChatServer(scripted) as server:
        result = judge_mtbench(answers, out, llm=settings(server), data_dir=data_dir)
        assert len(server.log) == 10
        prompts = {(max(MARK.findall(e.prompt), key=lambda m: m[1])): e.request.body for e in server.log.entries()}
        math_turn1 = prompts[("111", "1")]["messages"]
        assert "[The Start of Reference Answer]" in math_turn1[1]["content"]
        assert "The area of the triangle is 0." in math_turn1[1]["content"]  # GPT-4's (wrong) reference
        assert prompts[("111", "1")]["max_tokens"] == 2048 and prompts[("111", "1")]["temperature"] == 0.0

        scores = orjson.loads((out / "scores.json").read_bytes())
        assert scores == orjson.loads(orjson.dumps(result.scores, option=orjson.OPT_NON_STR_KEYS))
        # the schema of layout.mtbench_scores, which the report reads
        assert (scores["turn_1"], scores["turn_2"]) == ((8 + 9 + 3 + 8.5 + 10) / 5, (6 + 5 + 7 + 2) / 4)
        assert scores["overall"] == pytest.approx((8 + 9 + 3 + 8.5 + 10 + 6 + 5 + 7 + 2) / 9)
        assert scores["categories"] == {
            "writing": {"score": (8 + 9 + 6) / 3, "turn_1": 8.5, "turn_2": 6.0},
            "reasoning": {"score": 4.0, "turn_1": 3.0, "turn_2": 5.0},
            "math": {"score": 7.75, "turn_1": 8.5, "turn_2": 7.0},
            "extraction": {"score": 6.0, "turn_1": 10.0, "turn_2": 2.0},
        }  # fmt: skip
        assert (scores["n_judged"], scores["n_failed"]) == (9, 1)
        assert scores["failed"] == [{"question_id": 82, "turn": 2, "error": "parse_failed: no [[rating]] in the reply"}]
        assert len(scores["unanswered"]) == 75 and scores["model"] == "vicuna"

        judgment_file = out / "model_judgment" / "judge-m_single.jsonl"
        lines = read_judgments(judgment_file)
        assert len(lines) == 10
        failed = next(j for j in lines if (j.question_id, j.turn) == (82, 2))
        assert failed.score == -1 and failed.judgment == SCRIPT[(82, 2)]  # FastChat's encoding, raw kept
        assert next(j for j in lines if (j.question_id, j.turn) == (111, 2)).judge == (
            "judge-m", "single-math-v1-multi-turn",
        )  # fmt: skip

        # a second model joins the same FastChat file; regrading the first costs no call and keeps both
        judge_mtbench(fastchat_answers(tmp_path / "other.jsonl", "other"), out, llm=settings(server), data_dir=data_dir)
        assert len(server.log) == 10  # same prompts (the model name is not in them): all from the cache
        again = judge_mtbench(answers, out, llm=settings(server), data_dir=data_dir)
        assert len(server.log) == 10 and again.scores["calls"]["sent"] == 0
        assert sorted({j.model for j in read_judgments(judgment_file)}) == ["other", "vicuna"]
        assert len(read_judgments(judgment_file)) == 20


def test_inline_references_and_our_generation_files_through_the_cli(cli, tmp_path: Path, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    rows = [
        Generation(f"mtbench_{q}", "mtbench", "tiny", ("t1", "t2"), (f"answer {q} turn 1", f"answer {q} turn 2"))
        for q in sorted({q for q, _ in SCRIPT})
    ]
    answers = tmp_path / "gen.jsonl"
    answers.write_bytes(b"".join(orjson.dumps(g.to_dict()) + b"\n" for g in rows))
    out = tmp_path / "mt"
    with LocalChatServer(scripted) as server:
        flags = ["--model", "judge-m", "--data-dir", str(data_dir), "--reference", "inline", "--no-progress"]
        done = cli("judge", "mtbench", str(answers), "-o", str(out), "--base-url", server.base_url, *flags)
        math_prompt = next(e.prompt for e in server.log.entries() if "answer 111 turn 1" in e.prompt)
    assert "Area is 3" in math_prompt  # the question file's own reference
    assert "tiny: overall 6.500" in done.stdout and "9 graded, 1 failed" in done.stdout
    assert (out / "model_judgment" / "judge-m_single.jsonl").is_file()
    bad = cli("judge", "mtbench", str(answers), "-o", str(out), "--model", "m", "--reference", "human", check=False)
    assert bad.returncode == 2 and "--reference must be gpt-4 or inline" in bad.stderr
