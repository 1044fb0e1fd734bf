"""Every LLM stage through the real CLI against a hostile OpenAI-protocol server (longsift.llm.server faults).

The server misbehaves on a seeded share of attempts: cut-off replies, null and empty content, oversized replies,
error bodies echoing the Authorization header, bad Retry-After values, replies made of 5,000-digit numbers,
FastAPI `detail` errors, plain-text and HTML errors, slow replies, connections dropped mid-body, bodies of the
wrong shape, 429s, 500s, timeouts, malformed JSON. For every record the expected final status is derived from
what the server did to that record's last attempt (its log), and checked: a record counts as done exactly when
its last attempt was a real answer; each failure has the kind its misbehaviour calls for; the exit code follows
--max-failed; and the API key appears in no file under the test's folder (SQLite cache included) and in no
console output.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from longsift.llm.outcomes import record_failure_kind
from longsift.llm.server import Faults, LocalChatServer, ServedRequest
from longsift.records import Generation

KEY = "sk-lsft-HOSTILE-7d1e5c0b9a42f3"
ENV = {"OPENAI_API_KEY": KEY}
ANSWERED = {"ok", "slow"}  # the outcomes of an attempt that got a real answer
KIND_OF_FAULT = {
    "length": "truncated",
    "null": "empty",
    "empty": "empty",
    "oversized": "oversized",
    "huge": "unparseable",
}
TIMEOUT_SLEEP = 0.7


def hostile(seed: int) -> Faults:
    """About two thirds of attempts misbehave, every kind at least a few percent."""
    return Faults(
        rate_429=0.03, rate_500=0.03, rate_timeout=0.03, rate_malformed=0.03, rate_garbage=0.03, rate_length=0.06,
        rate_null=0.04, rate_empty=0.04, rate_oversized=0.03, rate_echo=0.06, rate_bad_retry_after=0.05,
        rate_huge=0.04, rate_detail=0.04, rate_text_error=0.03, rate_html_error=0.03, rate_slow=0.04, rate_drop=0.04,
        rate_wrong_shape=0.03, timeout_sleep=TIMEOUT_SLEEP, slow_sleep=0.05, retry_after=0.01,
        oversize_chars=5_000_000, seed=seed,
    )  # fmt: skip


def common_flags(server: LocalChatServer, model: str = "hostile-model") -> list[str]:
    return ["--base-url", server.base_url, "--model", model, "--timeout", "0.5", "--max-attempts", "2",
            "--backoff", "0.01", "--concurrency", "8", "--no-progress"]  # fmt: skip


def last_outcomes(server: LocalChatServer, mark: Callable[[ServedRequest], str | None]) -> dict[str, str]:
    """Marker -> what the server did to that request's last attempt."""
    time.sleep(TIMEOUT_SLEEP + 0.3)  # a timed-out attempt is logged when the server wakes up
    last: dict[str, tuple[int, str]] = {}
    hit = server.log.outcomes()
    assert len(hit) >= 10 and "ok" in hit, hit  # the run met many kinds of misbehaviour, and answers too
    for entry in server.log.entries():
        key = mark(entry.request)
        if key is not None and entry.request.attempt >= last.get(key, (0, ""))[0]:
            last[key] = (entry.request.attempt, entry.outcome)
    return {key: outcome for key, (_, outcome) in last.items()}


def check_failure(outcome: str, status: str, error: str | None) -> None:
    """A failed record's kind is the one its last attempt's misbehaviour calls for."""
    kind = record_failure_kind(status, error)
    expected = KIND_OF_FAULT.get(outcome)
    if expected is not None:
        assert kind == expected, (outcome, status, error)
    else:  # an error status, a dropped connection, a malformed body: a call failure of another kind
        assert kind not in (None, "truncated", "empty", "oversized", "unparseable"), (outcome, status, error)


def expected_exit(failed: int, total: int, max_failed: float = 0.5) -> int:
    return 1 if failed == total or failed > max_failed * total else 0


def assert_no_key(root: Path, *outputs) -> None:  # outputs: CompletedProcess
    leaked = [p for p in root.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]
    assert leaked == []
    for output in outputs:
        assert KEY not in output.stdout and KEY not in output.stderr


def read_jsonl(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def alpaca_corpus(path: Path, n: int) -> Path:
    rows = [{"instruction": f"Task T{i:03d}: explain item {i}.", "input": "", "output": f"Original answer {i}."}
            for i in range(n)]  # fmt: skip
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


TASK = re.compile(r"Task (T\d{3})")


def task_mark(request: ServedRequest) -> str | None:
    found = TASK.search(request.prompt)
    return found.group(1) if found else None


def refine_reply(request: ServedRequest) -> str:
    return f"Critique: fine.\n[Better Answer] A better answer for {task_mark(request)}. [End]"


@pytest.mark.parametrize("seed", [1, 2])
def test_refine_against_a_hostile_server(tmp_path: Path, cli, seed: int) -> None:  # type: ignore[no-untyped-def]
    corpus = alpaca_corpus(tmp_path / "in.jsonl", 30)
    out = tmp_path / "out" / "refined.jsonl"
    with LocalChatServer(refine_reply, faults=hostile(seed), api_key=KEY) as server:
        done = cli("refine", str(corpus), "-o", str(out), "--output-format", "messages", *common_flags(server),
                   env=ENV, check=False)  # fmt: skip
        outcomes = last_outcomes(server, task_mark)
        before = len(server.log)
        rerun = cli("refine", str(corpus), "-o", str(tmp_path / "out" / "again.jsonl"), "--output-format", "messages",
                    *common_flags(server), env=ENV, check=False)  # fmt: skip
        resent = {task_mark(e.request) for e in server.log.entries()[before:]}
    # a rerun pays again only for what had no answer: answers (parseable or not) and cut-off replies are final
    assert resent == {mark for mark, outcome in outcomes.items() if outcome not in {*ANSWERED, "length", "huge"}}
    records = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert len(records) == 30 and len(outcomes) == 30
    failures = {
        f["id"]: f for f in map(orjson.loads, (tmp_path / "out" / "refined.failures.jsonl").read_bytes().splitlines())
    }
    for i, record in enumerate(records):
        mark, meta = f"T{i:03d}", record["metadata"]
        if outcomes[mark] in ANSWERED:
            assert meta["refine_status"] == "refined"
            assert record["messages"][-1]["content"] == f"A better answer for {mark}."
        else:  # never a refinement: the original stays, the failure is listed with its kind
            assert meta["refine_status"] == "failed" and record["messages"][-1]["content"] == f"Original answer {i}."
            check_failure(outcomes[mark], failures[record["id"]]["status"], failures[record["id"]]["error"])
    failed = sum(r["metadata"]["refine_status"] == "failed" for r in records)
    assert failed == len(failures) and 0 < failed < 30
    assert done.returncode == expected_exit(failed, 30), done.stderr
    if done.returncode:
        assert done.stderr.strip().splitlines()[-1].startswith(f"error: refine: {failed} of 30 failed")
    assert_no_key(tmp_path, done, rerun)


def score_reply(request: ServedRequest) -> str:
    return "4.5\nAccurate and helpful."


def test_score_against_a_hostile_server(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    corpus = alpaca_corpus(tmp_path / "in.jsonl", 30)
    out = tmp_path / "out" / "scored.jsonl"
    with LocalChatServer(score_reply, faults=hostile(3), api_key=KEY) as server:
        done = cli("score", str(corpus), "-o", str(out), "--output-format", "messages", *common_flags(server),
                   "--max-failed", "25", env=ENV, check=False)  # fmt: skip
        outcomes = last_outcomes(server, task_mark)
    records = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    failures = {
        f["id"]: f for f in map(orjson.loads, (tmp_path / "out" / "scored.failures.jsonl").read_bytes().splitlines())
    }
    for i, record in enumerate(records):
        meta = record["metadata"]
        if outcomes[f"T{i:03d}"] in ANSWERED:
            assert meta["score_status"] == "scored" and meta["score"] == 4.5
        else:
            assert meta["score_status"] == "failed" and "score" not in meta
            failure = failures[record["id"]]
            assert failure["error"] == meta["score_error"]
            check_failure(outcomes[f"T{i:03d}"], failure["status"], failure["error"])
    failed = sum(r["metadata"]["score_status"] == "failed" for r in records)
    assert 0 < failed < 30 and done.returncode == (1 if failed > 25 else 0), done.stderr
    assert_no_key(tmp_path, done)


QUESTION = re.compile(r"Question (P\d{3})")


def pair_files(tmp_path: Path, n: int) -> tuple[Path, Path]:
    paths = []
    for model, word in (("model-a", "alpha"), ("model-b", "beta")):
        rows = [Generation(f"P{i:03d}", "vicuna", model, (f"Question P{i:03d}?",), (f"{word} answer {i}",))
                for i in range(n)]  # fmt: skip
        path = tmp_path / f"{model}.jsonl"
        path.write_bytes(b"".join(orjson.dumps(g.to_dict()) + b"\n" for g in rows))
        paths.append(path)
    return paths[0], paths[1]


def pair_mark(request: ServedRequest) -> str | None:
    found = QUESTION.search(request.prompt)
    if found is None:
        return None
    order = "ab" if request.prompt.index("alpha answer") < request.prompt.index("beta answer") else "ba"
    return f"{found.group(1)}/{order}"


def test_judge_pairwise_against_a_hostile_server(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    a, b = pair_files(tmp_path, 15)
    out = tmp_path / "judge"
    with LocalChatServer(lambda r: "8 6\nThe first is better.", faults=hostile(4), api_key=KEY) as server:
        done = cli("judge", "pairwise", str(a), str(b), "-o", str(out), "--template", "paper", *common_flags(server),
                   env=ENV, check=False)  # fmt: skip
        outcomes = last_outcomes(server, pair_mark)
    judgments = [orjson.loads(line) for line in (out / "judgments.jsonl").read_bytes().splitlines()]
    assert len(judgments) == 30 and len(outcomes) == 30
    for judgment in judgments:
        outcome = outcomes[f"{judgment['prompt_id']}/{judgment['order']}"]
        if outcome in ANSWERED:
            assert judgment["verdict"] in ("a", "b") and judgment.get("status", "ok") != "failed"
        else:
            assert judgment["status"] == "failed" and judgment["verdict"] is None
            check_failure(outcome, "failed", judgment["error"])
    failed = sum(j.get("status") == "failed" for j in judgments)
    summary = orjson.loads((out / "summary.json").read_bytes())
    assert len(summary["failed"]) == failed and 0 < failed < 30
    assert done.returncode == expected_exit(failed, 30), done.stderr
    assert_no_key(tmp_path, done)


MTBENCH_MARK = re.compile(r"answer (\d+) turn (\d)")


def mtbench_mark(request: ServedRequest) -> str | None:
    marks = {(int(q), int(t)) for q, t in MTBENCH_MARK.findall(request.prompt)}
    if not marks:
        return None
    question, turn = max(marks, key=lambda m: m[1])  # a turn-2 prompt shows both answers
    return f"{question}/{turn}"


def test_judge_mtbench_against_a_hostile_server(tmp_path: Path, cli, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    questions = [orjson.loads(line)["question_id"] for line in (data_dir / "mt_bench" / "question.jsonl").open("rb")]
    chosen = questions[:12]
    answers = tmp_path / "answers.jsonl"
    rows = [
        {"question_id": q, "answer_id": f"id{q}", "model_id": "graded", "tstamp": 0.0,
         "choices": [{"index": 0, "turns": [f"answer {q} turn 1", f"answer {q} turn 2"]}]}
        for q in chosen
    ]  # fmt: skip
    answers.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "mt"
    with LocalChatServer(lambda r: "Solid.\nRating: [[7]]", faults=hostile(5), api_key=KEY) as server:
        done = cli("judge", "mtbench", str(answers), "-o", str(out), "--data-dir", str(data_dir),
                   *common_flags(server, "judge-m"), env=ENV, check=False)  # fmt: skip
        outcomes = last_outcomes(server, mtbench_mark)
    assert len(outcomes) == 24
    scores = orjson.loads((out / "scores.json").read_bytes())
    failed = {f"{f['question_id']}/{f['turn']}": f["error"] for f in scores["failed"]}
    graded = {
        f"{j['question_id']}/{j['turn']}": j["score"]
        for j in map(orjson.loads, (out / "model_judgment" / "judge-m_single.jsonl").read_bytes().splitlines())
    }
    assert len(graded) == 24
    for item, outcome in outcomes.items():
        if outcome in ANSWERED:
            assert item not in failed and graded[item] == 7.0
        else:
            assert graded[item] == -1.0  # FastChat's mark for a failed grading, left out of the scores
            status, _, error = failed[item].partition(": ")
            check_failure(outcome, status, error)
    assert scores["n_failed"] == len(failed) and 0 < len(failed) < 24
    assert done.returncode == expected_exit(len(failed), 24), done.stderr
    # a rerun from the cache alone reads every cached reply again (the 5,000-digit ones too): no crash
    again = cli("judge", "mtbench", str(answers), "-o", str(out), "--data-dir", str(data_dir),
                "--base-url", "http://127.0.0.1:9/v1", "--model", "judge-m", "--cache-only", "--no-progress",
                env=ENV, check=False)  # fmt: skip
    assert again.returncode in (0, 1) and "Traceback" not in again.stderr
    assert orjson.loads((out / "scores.json").read_bytes())["n_judged"] == 24 - len(failed)
    assert_no_key(tmp_path, done, again)
