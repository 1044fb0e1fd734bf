"""Pairwise judging end to end against the real local OpenAI-protocol server with scripted verdicts."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from longsift.errors import ConfigError, DataError
from longsift.judge.pairwise import JudgeItem, generations_by_prompt, judge_pairwise, judge_question
from longsift.judge.templates import PAIR_TEMPLATES
from longsift.llm.server import Faults, LocalChatServer, ServedRequest
from longsift.llm.settings import LLMSettings
from longsift.records import Generation, Judgment

# (eval_set, prompt_id) -> (reply when A is shown first, reply when B is shown first), in PRESENTED terms.
SCRIPT = {
    ("koala", "k1"): ("9 7\nA is better.", "7 9\nA is better."),  # a, a
    ("koala", "k2"): ("8.5 8\nClose.", "8 8.5\nClose."),  # a, a: 8.5 beats 8 (the paper's int() made a tie)
    ("koala", "k3"): ("8 8\nEqual.", "6 9\nA."),  # tie, a
    ("koala", "k4"): ("9 5\nFirst.", "9 5\nFirst."),  # a, b: position bias
    ("koala", "k5"): ("3 9\nB.", "9 3\nB."),  # b, b
    ("vicuna", "v1"): ("Assistant 1 is better than Assistant 2.", "7 7\nSame."),  # unparseable, tie
    ("vicuna", "v2"): ("7 7\nSame.", "7 7\nSame."),  # tie, tie
    ("vicuna", "v3"): ("6 8\nB.", "8 8\nSame."),  # b, tie
    ("vicuna", "v4"): ("10 2\nA.", "2 10\nA."),  # a, a
}
ANSWER = re.compile(r"\[The Start of Assistant 1's Answer\]\n(\w+) answer to (\w+)/(\w+)")


def generations(model: str, longer_on: str) -> list[Generation]:
    """A's answers are the longer ones on koala, B's on vicuna (for the longer-answer statistic)."""
    out = []
    for eval_set, prompt_id in SCRIPT:
        pad = " and more" * (5 if (eval_set == longer_on) else 1)
        text = f"{model} answer to {eval_set}/{prompt_id}{pad}"
        out.append(Generation(prompt_id, eval_set, model, (f"Question {eval_set} {prompt_id}?",), (text,)))
    return out


def write_generations(path: Path, rows: list[Generation]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(g.to_dict()) + b"\n" for g in rows))
    return path


def scripted(request: ServedRequest) -> str:
    match = ANSWER.search(request.prompt)
    assert match is not None, request.prompt[:300]
    first_model, eval_set, prompt_id = match.groups()
    ab, ba = SCRIPT[(eval_set, prompt_id)]
    reply = ab if first_model == "alpha" else ba
    if request.body.get("temperature", 0) > 0 and not re.match(r"\d", reply):
        return "8 6\nOn a second look, A."  # a resample (non-zero temperature) reads better
    return reply


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    a = write_generations(tmp_path / "a.jsonl", generations("alpha", longer_on="koala"))
    b = write_generations(tmp_path / "b.jsonl", generations("beta", longer_on="vicuna"))
    return a, b


def settings(server: LocalChatServer, **overrides) -> LLMSettings:  # type: ignore[no-untyped-def]
    values = dict(
        base_url=server.base_url, model="judge-m", concurrency=4, timeout=5.0, max_attempts=3, backoff_base=0.005,
        backoff_max=0.02, progress=False,
    )  # fmt: skip
    return LLMSettings(**{**values, **overrides})  # type: ignore[arg-type]


def counts(row: dict) -> tuple[int, ...]:  # type: ignore[type-arg]
    return tuple(row[k] for k in ("win", "tie", "lose", "failed", "n"))


def test_both_policies_give_the_hand_computed_table_and_a_rerun_costs_nothing(files, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    with LocalChatServer(scripted) as server:
        result = judge_pairwise(*files, out, template="paper", llm=settings(server))
        assert len(server.log) == 18  # 9 prompts x 2 orders, nothing retried
        summary = orjson.loads((out / "summary.json").read_bytes())
        assert summary == orjson.loads(orjson.dumps(result.summary))
        paper, strict = summary["paper"], summary["strict"]
        assert list(paper) == ["koala", "vicuna", "all"]
        assert counts(paper["koala"]) == (3, 1, 1, 0, 5)
        assert counts(paper["vicuna"]) == (1, 1, 1, 1, 4)
        assert counts(paper["all"]) == (4, 2, 2, 1, 9)
        assert counts(strict["koala"]) == (2, 2, 1, 0, 5)
        assert counts(strict["vicuna"]) == (1, 2, 0, 1, 4)
        assert counts(strict["all"]) == (3, 4, 1, 1, 9)
        assert paper["all"]["winning_score"] == 1 + (4 - 2) / 8
        assert strict["all"]["winning_score"] == 1 + (3 - 1) / 8
        assert (paper["koala"]["flipped"], paper["vicuna"]["flipped"]) == (2, 1)  # k3, k4; v3
        assert paper["all"]["flip_pct"] == 100 * 3 / 8
        # decided prompts won by the longer answer: koala k1 k2 k3 (A longer, A won), not k5; vicuna v3, not v4
        assert (paper["koala"]["longer_won"], paper["koala"]["decided_by_length"]) == (3, 4)
        assert (paper["all"]["longer_won"], paper["all"]["decided_by_length"]) == (4, 6)
        assert summary["failed"] == [
            {"eval_set": "vicuna", "prompt_id": "v1", "order": "ab",
             "error": "unparseable reply: first line is not two scores: 'Assistant 1 is better than Assistant 2.'"},
        ]  # fmt: skip
        assert (summary["model_a"], summary["model_b"], summary["judge"], summary["template"]) == (
            "alpha", "beta", "judge-m", "paper",
        )  # fmt: skip

        judgments = [
            Judgment.from_dict(orjson.loads(line)) for line in (out / "judgments.jsonl").read_bytes().splitlines()
        ]
        assert len(judgments) == 18
        by_key = {(j.prompt_id, j.order): j for j in judgments}
        k2ab, k2ba = by_key[("k2", "ab")], by_key[("k2", "ba")]
        assert (k2ab.verdict, k2ab.score_a, k2ab.score_b, k2ab.raw) == ("a", 8.5, 8.0, "8.5 8\nClose.")
        assert (k2ba.verdict, k2ba.score_a, k2ba.score_b, k2ba.raw) == ("a", 8.5, 8.0, "8 8.5\nClose.")
        v1 = by_key[("v1", "ab")]
        assert (v1.status, v1.verdict, v1.raw) == ("failed", None, "Assistant 1 is better than Assistant 2.")
        assert all(j.model_a == "alpha" and j.model_b == "beta" and j.judge == "judge-m" for j in judgments)
        assert by_key[("k1", "ab")].metadata["length_a"] > by_key[("k1", "ab")].metadata["length_b"]

        # the request the judge saw is the paper's: system prompt, temperature 0, top_p 1, max_tokens 256
        body = server.log.entries()[0].request.body
        system = "You are a helpful and precise assistant for checking the quality of the answer."
        assert body["messages"][0] == {"role": "system", "content": system}
        assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.0, 1.0, 256)

        again = judge_pairwise(*files, out, template="paper", llm=settings(server))
        assert len(server.log) == 18  # rerun: every answer from the cache, no new call
        assert again.summary["paper"] == summary["paper"] and again.summary["calls"]["sent"] == 0
        assert all(j.metadata["cached"] for j in again.judgments)


def test_resampling_an_unparseable_reply_when_allowed(files, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with LocalChatServer(scripted) as server:
        result = judge_pairwise(*files, tmp_path / "out", llm=settings(server), resample=2)
        assert len(server.log) == 19  # one new sample, for v1 in order ab
        resample = server.log.entries()[-1].request.body
        assert resample["temperature"] > 0 and resample["seed"] == 1
    v1 = next(j for j in result.judgments if (j.prompt_id, j.order) == ("v1", "ab"))
    assert (v1.status, v1.verdict, v1.score_a, v1.score_b) == ("ok", "a", 8.0, 6.0)
    assert v1.metadata["raws"] == ["Assistant 1 is better than Assistant 2.", "8 6\nOn a second look, A."]
    assert result.summary["paper"]["all"]["failed"] == 0 and result.summary["failed"] == []


def test_fault_injected_run_judges_or_lists_every_prompt(tmp_path: Path) -> None:
    rows_a = [
        Generation(f"p{i}", "wizardlm", "alpha", (f"q{i}",), (f"alpha answer to wizardlm/p{i}",)) for i in range(60)
    ]
    rows_b = [
        Generation(f"p{i}", "wizardlm", "beta", (f"q{i}",), (f"beta answer to wizardlm/p{i}",)) for i in range(60)
    ]
    a, b = write_generations(tmp_path / "a.jsonl", rows_a), write_generations(tmp_path / "b.jsonl", rows_b)
    faults = Faults.spread(0.45, timeout_sleep=0.3, retry_after=0.005, seed=11)
    with LocalChatServer(lambda request: "8 6\nfine.", faults=faults) as server:
        first = judge_pairwise(
            a, b, tmp_path / "out", llm=settings(server, timeout=0.2, max_attempts=2, concurrency=16)
        )
        total = first.summary["paper"]["all"]
        assert total["n"] == 60 and total["judged"] + total["failed"] == 60
        failed_prompts = {f["prompt_id"] for f in first.summary["failed"]}
        assert 0 < len(failed_prompts) == total["failed"]  # ~0.45^2 of 120 calls failed twice
        for judgment in first.judgments:
            assert judgment.status == "ok" or judgment.prompt_id in failed_prompts
            assert judgment.status == "failed" or judgment.verdict in ("a", "b")
        assert {f["error"].split(":")[0] for f in first.summary["failed"]} == {"call failed"}

        second = judge_pairwise(a, b, tmp_path / "out", llm=settings(server, timeout=2.0, max_attempts=6))
        assert second.summary["paper"]["all"]["failed"] == 0  # the rerun retried only the failures
        assert sum(j.metadata["cached"] for j in second.judgments) == 120 - len(first.summary["failed"])


def test_other_templates_map_back_to_a_and_b(files, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    def fastchat(request: ServedRequest) -> str:
        first = re.search(r"\[The Start of Assistant A's Answer\]\n(\w+)", request.prompt).group(1)  # type: ignore[union-attr]
        return "Beta is clearly better. [[A]]" if first == "beta" else "Beta wins: [[B]]"

    def alpacaeval(request: ServedRequest) -> str:
        first = re.search(r'"model_identifier": "m",\s*"output": """(\w+)', request.prompt).group(1)  # type: ignore[union-attr]
        return "m" if first == "alpha" else "M"  # always alpha

    for template, responder, expected in (("fastchat-pair", fastchat, "lose"), ("alpacaeval", alpacaeval, "win")):
        with LocalChatServer(responder) as server:
            result = judge_pairwise(*files, tmp_path / template, template=template, llm=settings(server))
        assert {j.verdict for j in result.judgments} == {"b" if expected == "lose" else "a"}
        assert result.summary["strict"]["all"][expected] == 9
        assert result.summary["paper"]["all"]["flipped"] == 0


def test_inputs_are_checked(tmp_path: Path) -> None:
    good = write_generations(tmp_path / "a.jsonl", generations("alpha", "koala"))
    other = write_generations(tmp_path / "b.jsonl", [Generation("z", "lima", "beta", ("q",), ("x",))])
    llm = LLMSettings(base_url="http://127.0.0.1:9/v1", model="m", progress=False)
    with pytest.raises(ConfigError, match="share no"):
        judge_pairwise(good, other, tmp_path / "out", llm=llm)
    with pytest.raises(ConfigError, match="resample"):
        judge_pairwise(good, good, tmp_path / "out", llm=llm, resample=-1)
    duplicate = tmp_path / "dup.jsonl"
    duplicate.write_bytes(good.read_bytes() + good.read_bytes().splitlines(keepends=True)[0])
    with pytest.raises(DataError, match="dup.jsonl: duplicate prompt koala/k1"):
        generations_by_prompt(duplicate)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"prompt_id": "x"}\n')
    with pytest.raises(DataError, match="broken.jsonl:1: not a generation record"):
        generations_by_prompt(broken)


def test_cli_contract(cli, files, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "cli-out"
    secret = {"OPENAI_API_KEY": "sk-test-secret-4242"}
    with LocalChatServer(scripted, api_key=secret["OPENAI_API_KEY"]) as server:
        dry = cli("judge", "pairwise", *map(str, files), "-o", str(out), "--base-url", server.base_url,
                  "--model", "judge-m", "--dry-run", env=secret)  # fmt: skip
        assert "dry run" in dry.stdout and "18" in dry.stdout and len(server.log) == 0
        done = cli("judge", "pairwise", *map(str, files), "-o", str(out), "--template", "paper",
                   "--base-url", server.base_url, "--model", "judge-m", "--no-progress", env=secret)  # fmt: skip
        assert len(server.log) == 18
    assert "koala" in done.stdout and "vicuna" in done.stdout and "judged 8 of 9 prompts (1 failed)" in done.stdout
    summary = orjson.loads((out / "summary.json").read_bytes())
    written = [path for path in out.rglob("*") if path.is_file()]
    assert len(written) >= 3 and not any(b"sk-test-secret" in path.read_bytes() for path in written)
    for policy in ("paper", "strict"):
        for key in ("koala", "vicuna", "all"):
            assert {"win", "tie", "lose", "failed", "n"} <= set(summary[policy][key])
    bad = cli("judge", "pairwise", *map(str, files), "-o", str(out), "--template", "nope", "--model", "m", check=False)
    assert bad.returncode == 2 and "unknown judge template 'nope'" in bad.stderr


def test_self_instruct_question_is_shown_as_the_papers_judge_showed_it() -> None:
    meta = {"instruction": "Fix the grammar.", "input": "He go home."}
    a = Generation("sinstruct_0", "sinstruct", "alpha", ("Fix the grammar.\n\nHe go home.",), ("He goes home.",), meta)
    b = Generation("sinstruct_0", "sinstruct", "beta", ("Fix the grammar.\n\nHe go home.",), ("He went home.",), meta)
    fields = JudgeItem(a, b, "ba").fields()
    (_, user) = PAIR_TEMPLATES.get("paper").messages(fields["question"], fields["answer_1"], fields["answer_2"])
    assert user.content.startswith("[Question]\nFix the grammar. Input: He go home.\n\n")
    assert "Assistant 1's Answer]\nHe went home.\n" in user.content  # order "ba": B first
    plain = Generation("koala_0", "koala", "alpha", ("Hi?",), ("Hello.",))
    assert judge_question(plain) == "Hi?"


def test_prompts_in_one_file_only_or_asked_differently_are_listed(tmp_path: Path) -> None:
    a_rows = generations("alpha", "koala") + [Generation("extra", "lima", "alpha", ("q",), ("alpha answer",))]
    b_rows = [
        Generation(g.prompt_id, g.eval_set, "beta", ("Another question?",) if g.prompt_id == "k1" else g.turns, ("b",))
        for g in generations("beta", "vicuna")
        if g.prompt_id != "v4"
    ]
    a, b = write_generations(tmp_path / "a.jsonl", a_rows), write_generations(tmp_path / "b.jsonl", b_rows)
    with LocalChatServer(lambda request: "8 6\nfine.") as server:
        result = judge_pairwise(a, b, tmp_path / "out", llm=settings(server))
        assert len(server.log) == 16  # 8 shared prompts x 2 orders
    assert result.summary["unpaired"] == {"only_in_a": ["vicuna/v4", "lima/extra"], "only_in_b": []}
    assert result.summary["different_prompts"] == ["koala/k1"]
    assert result.summary["paper"]["all"]["n"] == 8
