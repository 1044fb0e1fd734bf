"""refine and score end to end against the real local OpenAI-protocol server (scripted replies), API and CLI."""

from __future__ import annotations

import gzip
import json
import os
import re
from pathlib import Path

import orjson
import pytest
from refine_replies import ACCEPTED_REPLIES, REJECTED_REPLIES

from longsift import load_all
from longsift.llm.cache import default_location
from longsift.llm.server import Faults, LocalChatServer, ServedRequest
from longsift.llm.settings import LLMSettings
from longsift.records import Example
from longsift.refine import refine, score

GOLDEN = Path(__file__).parent / "golden" / "refine"
STATUSES = {"refined", "unchanged", "failed"}


def answer_shown(prompt: str) -> str:
    """The answer as the refine prompt shows it."""
    return prompt.split("[The Start of Answer]\n", 1)[1].split("\n\n[The End of Answer]", 1)[0]


def case_of(prompt: str) -> int:
    found = re.search(r"case (\d+)\b", prompt)
    assert found, prompt
    return int(found.group(1))


def settings(server: LocalChatServer, tmp_path: Path, **kw) -> LLMSettings:
    return LLMSettings(
        model="local-test", base_url=server.base_url, cache=tmp_path / "cache.sqlite", progress=False,
        backoff_base=0.01, backoff_max=0.02, **kw,
    )  # fmt: skip


def case_records(n: int, with_input: bool = False) -> list[Example]:
    return [
        Example.from_alpaca(
            f"Do case {i}.", "some input" if with_input else "", f"original answer {i}", id=f"c{i}", row=i
        )
        for i in range(n)
    ]


def test_every_reply_format_through_the_server(tmp_path: Path) -> None:
    replies = [reply for reply, _ in ACCEPTED_REPLIES] + REJECTED_REPLIES
    replies.append("[Better Answer]\n  original   answer\n{n} [End]".replace("{n}", str(len(replies))))  # unchanged

    def respond(request: ServedRequest) -> str:
        return replies[case_of(request.prompt)]

    records = case_records(len(replies))
    with LocalChatServer(respond) as server:
        result = refine(records, settings(server, tmp_path, concurrency=4))
    out = result.records
    assert [r.id for r in out] == [r.id for r in records]
    accepted = len(ACCEPTED_REPLIES)
    for record, original, (_, expected) in zip(out[:accepted], records, ACCEPTED_REPLIES, strict=False):
        assert record.metadata["refine_status"] == "refined"
        assert record.response == expected
        assert record.metadata["original_response"] == original.response
    for record, original in zip(out[accepted:-1], records[accepted:-1], strict=True):
        assert record.metadata["refine_status"] == "failed"
        assert record.response == original.response  # kept, never empty
        assert record.metadata["refine_error"]
    assert out[-1].metadata["refine_status"] == "unchanged" and out[-1].response == records[-1].response
    report = result.report
    assert report.counts == {"refined": accepted, "unchanged": 1, "failed": len(REJECTED_REPLIES)}
    assert [f.id for f in report.failures] == [r.id for r in records[accepted:-1]]
    # an empty reply is no reply (retried by the next run); every other rejected reply was read and did not parse
    assert all(
        (f.raw is not None and f.status == "parse_failed")
        or (f.status == "call_failed" and f.error.startswith("empty"))
        for f in report.failures
    )
    assert sum(f.status == "call_failed" for f in report.failures) == sum(not r.strip() for r in REJECTED_REPLIES)
    assert report.sent == len(replies) and report.cached == 0
    assert f"{accepted} refined, 1 unchanged, {len(REJECTED_REPLIES)} failed" in report.summary()


def test_length_ratios_and_truncation_in_tokens(tmp_path: Path) -> None:
    def respond(request: ServedRequest) -> str:
        shown = answer_shown(request.prompt)
        return f"[Better Answer]\n{shown} {shown}\n[End]"  # twice as long as what it was shown

    long_answer = "word " * 3000
    records = [*case_records(3), Example.from_alpaca("Do case 3.", "", long_answer, id="long", row=3)]
    with LocalChatServer(respond) as server:
        result = refine(records, settings(server, tmp_path), max_prompt_tokens=600)
        sent = [entry.request for entry in server.log]
    report = result.report
    assert report.counts["refined"] == 4 and report.truncated == 1
    assert result.records[3].metadata["refine_truncated"] is True
    assert result.records[3].metadata["original_response"] == long_answer
    shown = [answer_shown(r.prompt) for r in sent if "case 3" in r.prompt][0]
    assert long_answer.startswith(shown) and len(shown) < len(long_answer)
    # Counted in tokens (3 characters each without a tokenizer) over every message, not in characters.
    prompt_chars = sum(len(m["content"]) for m in [r for r in sent if "case 3" in r.prompt][0].messages)
    assert 600 * 3 - 60 <= prompt_chars + 2 * 4 * 3 <= 600 * 3
    short = len("original answer 0")
    assert report.ratio_median() == pytest.approx((2 * short + 1) / short)
    long_ratio = (2 * len(shown) + 1) / len(long_answer)  # against the whole original, not what was shown
    assert report.ratio_mean() == pytest.approx((3 * (2 * short + 1) / short + long_ratio) / 4)
    assert "3 characters per token" in report.summary() and "1 answers cut to 600 prompt tokens" in report.summary()


def test_over_budget_records_fail_without_a_call(tmp_path: Path) -> None:
    records = [
        Example.from_alpaca("Do case 0. " + "long instruction " * 400, "", "short answer", id="huge", row=0),
        *case_records(2)[1:],
    ]
    with LocalChatServer(lambda r: "[Better Answer] better [End]") as server:
        result = refine(records, settings(server, tmp_path), max_prompt_tokens=500)
        assert len(server.log) == 1
    assert [r.metadata["refine_status"] for r in result.records] == ["failed", "refined"]
    assert result.records[0].response == "short answer"
    assert "over the token budget" in result.records[0].metadata["refine_error"]


def test_call_failures_are_kept_and_retried_by_the_next_run(tmp_path: Path) -> None:
    records = case_records(30)
    reply = "[Better Answer] better [End]"
    faults = Faults(rate_500=0.5, seed=3)
    with LocalChatServer(lambda r: reply, faults=faults) as server:
        first = refine(records, settings(server, tmp_path, max_attempts=1, concurrency=4))
    failed = [r.id for r in first.records if r.metadata["refine_status"] == "failed"]
    assert 0 < len(failed) < 30
    assert all(f.status == "call_failed" for f in first.report.failures)
    with LocalChatServer(lambda r: reply) as server:
        second = refine(records, settings(server, tmp_path, concurrency=4))
        assert len(server.log) == len(failed)  # only the failures are sent again
    assert {r.metadata["refine_status"] for r in second.records} == {"refined"}


def _render_golden(entry: ServedRequest) -> str:
    body = {k: entry.body[k] for k in ("messages", "temperature", "top_p", "max_tokens") if k in entry.body}
    return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


@pytest.mark.parametrize(
    ("name", "record"),
    [
        ("refine_no_input", Example.from_alpaca("Name a primary colour. ", "", " Red is one.\n", id="a", row=0)),
        ("refine_with_input", Example.from_alpaca("Translate to French.", "Good morning {friend}", "Bonjour", id="b")),
    ],
)
def test_golden_prompt_as_the_server_received_it(name: str, record: Example, tmp_path: Path) -> None:
    with LocalChatServer(lambda r: "[Better Answer] x [End]") as server:
        refine([record], settings(server, tmp_path))
        (entry,) = [e.request for e in server.log]
    assert entry.body["model"] == "local-test"
    _check_golden(name, _render_golden(entry))


def test_golden_score_prompt(tmp_path: Path) -> None:
    record = Example.from_alpaca("Name a primary colour.", "", "Red.", id="a", row=0)
    with LocalChatServer(lambda r: "5\nGood.") as server:
        score([record], settings(server, tmp_path))
        (entry,) = [e.request for e in server.log]
    _check_golden("score_alpagasus", _render_golden(entry))


def _check_golden(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.json"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"{path} missing: run with UPDATE_GOLDEN=1 once and review it"
    assert text == path.read_text(encoding="utf-8")


# The paper's prompt construction (refinement/refine_responses.py), restated here as the reference the packaged
# prompt files must reproduce byte for byte, the user turn's trailing blank lines included.
PAPER_CRITERIA_TAIL = (
    "Analyse based on the Helpfulness, Relevance, Accuracy, Level of Details, and Structure. \n"
    "2. Based on the reason you provided, please generate a better answer while preserving the same content. To "
    "achieve that, you may want to adjust the level of details, add bullet points, or use comprehensive words, etc. "
    "The answer should be in the format of [Better Answer] your answer [End] \n"
)


def paper_prompt(ins: str, inp: str, outp: str) -> tuple[str, str]:
    if not inp:
        system = (
            "You are a helpful, precise but picky assistant for checking the quality of the answer to a given "
            "instruction."
        )
        criteria = (
            "We would like you to answer several questions related to the quality of the answer to the given "
            "instruction. \n1. Why this answer is not good for the given instruction? " + PAPER_CRITERIA_TAIL
        )
        user = (
            f"[Instruction]\n{ins}\n\n[The Start of Answer]\n{outp}\n\n[The End of Answer]\n\n[System]\n{criteria}\n\n"
        )
    else:
        system = (
            "You are a helpful and precise assistant for checking the quality of the answer to a given instruction "
            "and its input."
        )
        criteria = (
            "We would like you to answer several questions related to the quality of the answer to the given "
            "instruction and corresponding input. \n1. Why this answer is not good for the given instruction and "
            "corresponding input? " + PAPER_CRITERIA_TAIL
        )
        user = (
            f"[Instruction]\n{ins}\n\n[The Start of Input]\n{inp}\n\n[The End of Input]\n\n"
            f"[The Start of Answer]\n{outp}\n\n[The End of Answer]\n\n[System]\n{criteria}\n\n"
        )
    return system, user


def alpagasus_prompt(ins: str, inp: str, outp: str) -> tuple[str, str]:
    system = (
        "We would like to request your feedback on the performance of AI assistant in response to the instruction "
        "and the given input displayed following."
    )
    user = (
        f"###Instruction:\n{ins}\n\n### Input:\n{inp}\n\n### Response:\n{outp}\n\n"
        "Please rate according to the accuracy of the response to the instruction and the input. Each assistant "
        "receives a score on a scale of 0 to 5, where a higher score indicates higher level of the accuracy. Please "
        "first output a single line containing value indicating the scores. In the subsequent line, please provide a "
        "comprehensive explanation of your evaluation, avoiding any potential bias. \n\n"
    )
    return system, user


@pytest.mark.parametrize("name", ["refine_no_input", "refine_with_input", "score_alpagasus"])
def test_golden_prompts_are_the_papers(name: str) -> None:
    body = json.loads((GOLDEN / f"{name}.json").read_text(encoding="utf-8"))
    system, user = (m["content"] for m in body["messages"])
    if name == "refine_no_input":
        expected = paper_prompt("Name a primary colour.", "", "Red is one.")
    elif name == "refine_with_input":
        expected = paper_prompt("Translate to French.", "Good morning {friend}", "Bonjour")
    else:
        expected = alpagasus_prompt("Name a primary colour.", "", "Red.")
    assert system == expected[0]
    assert user == expected[1]
    assert body["temperature"] == 0 and body["top_p"] == 1.0


def test_score_through_the_server(tmp_path: Path) -> None:
    replies = ["4.5\nAccurate.", "Score: 3\nOk.", "5", "I cannot rate this.", "9\nToo high.", "**2**\nPoor."]
    records = case_records(len(replies))
    with LocalChatServer(lambda r: replies[case_of(r.prompt)]) as server:
        result = score(records, settings(server, tmp_path))
    assert [r.metadata.get("score") for r in result.records] == [4.5, 3.0, 5.0, None, None, 2.0]
    assert [r.metadata["score_status"] for r in result.records] == ["scored"] * 3 + ["failed"] * 2 + ["scored"]
    assert [r.response for r in result.records] == [r.response for r in records]
    assert result.report.histogram() == {2.0: 1, 3.0: 1, 4.5: 1, 5.0: 1}
    assert "4 scored, 2 failed" in result.report.summary() and "2 at or above 4.5" in result.report.summary()


def test_resample_gives_unparseable_replies_a_second_chance(tmp_path: Path) -> None:
    def respond(request: ServedRequest) -> str:
        return "5\nfine" if request.body.get("seed") else "no score here"

    with LocalChatServer(respond) as server:
        result = score(case_records(2), settings(server, tmp_path), resample=1)
        assert len(server.log) == 4
    assert [r.metadata["score"] for r in result.records] == [5.0, 5.0]


# ---- the CLI, as automation runs it ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pool_sample(alpaca_pool: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """50 real rows of the shared public Alpaca pool, as an Alpaca JSON file."""
    with gzip.open(alpaca_pool, "rt", encoding="utf-8") as handle:
        rows = [json.loads(next(handle)) for _ in range(50)]
    path = tmp_path_factory.mktemp("pool") / "alpaca_50.json"
    path.write_text(json.dumps([{k: r[k] for k in ("instruction", "input", "output")} for r in rows]))
    return path


def pool_responder(request: ServedRequest) -> str:
    """Refined for most rows; an unchanged copy for some; an unreadable reply for others (by answer length)."""
    shown = answer_shown(request.prompt)
    if len(shown) % 7 == 0:
        return "The answer is good enough."
    if len(shown) % 7 == 1:
        return f"1. Fine.\n2. [Better Answer]\n{shown}\n[End]"
    return f"1. Too terse.\n\n2. [Better Answer]\n**Answer.** {shown}\n\n- detail one\n- detail two\n[End]"


def test_refine_cli_on_the_alpaca_pool(cli, pool_sample: Path, tmp_path: Path) -> None:
    out = tmp_path / "run" / "refined.jsonl"
    args = [
        "refine",
        str(pool_sample),
        "-o",
        str(out),
        "--output-format",
        "messages",
        "--model",
        "gpt-x",
        "--concurrency",
        "4",
    ]
    with LocalChatServer(pool_responder) as server:
        first = cli(*args, "--base-url", server.base_url, "--no-progress")
        sent = len(server.log)
        assert sent == 50
        second = cli(*args, "--base-url", server.base_url, "--no-progress")
        assert len(server.log) == sent  # the rerun costs no new request
    originals, _ = load_all(str(pool_sample))
    records = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert len(records) == 50
    counts = {status: 0 for status in STATUSES}
    for record, original in zip(records, originals, strict=True):
        assert record["id"] == original.id
        status = record["metadata"]["refine_status"]
        counts[status] += 1
        response = record["messages"][-1]["content"]
        assert response.strip()
        assert record["metadata"]["original_response"] == original.response
        if status == "refined":
            assert response.startswith("**Answer.** ") and response.endswith("- detail two")
        else:
            assert response == original.response
    assert all(counts.values()), counts
    summary = first.stdout.strip().splitlines()[-1]
    assert summary.startswith("refine: 50 records: ")
    assert f"{counts['refined']} refined, {counts['unchanged']} unchanged, {counts['failed']} failed" in summary
    assert "50 calls sent, 0 cached" in summary
    assert "0 calls sent, 50 cached" in second.stdout.strip().splitlines()[-1]
    failures = [orjson.loads(line) for line in (out.parent / "refined.failures.jsonl").read_bytes().splitlines()]
    assert len(failures) == counts["failed"] and all(f["status"] == "parse_failed" for f in failures)
    assert "failed" in first.stderr and default_location().is_file()


def test_cli_dry_run_sends_nothing(cli, pool_sample: Path, tmp_path: Path) -> None:
    out = tmp_path / "refined.jsonl"
    with LocalChatServer(pool_responder) as server:
        result = cli("refine", str(pool_sample), "-o", str(out), "--model", "gpt-4o-mini", "--base-url",
                     server.base_url, "--dry-run")  # fmt: skip
        assert len(server.log) == 0
    assert not out.exists()
    assert "calls:" in result.stdout and "50 distinct" in result.stdout and "estimated cost: $" in result.stdout
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("refine: dry run over 50 records: 0 answers cut to 2048 prompt tokens, estimated at 3 ")
    assert "; 0 prompts over budget even without an answer; " in last
    assert last.endswith("nothing sent, nothing written")


def test_cli_user_prompt_file_and_score(cli, pool_sample: Path, tmp_path: Path) -> None:
    prompt = tmp_path / "strict.toml"
    user = "Rate strictly: {instruction}\nAnswer: {output}\nScore first."
    prompt.write_text(f'name = "strict"\n[prompt]\nuser = """{user}"""\n')
    out = tmp_path / "scored.jsonl"

    def respond(request: ServedRequest) -> str:
        assert request.prompt.startswith("Rate strictly: ")
        return f"{len(request.prompt) % 6}\nbecause"

    with LocalChatServer(respond) as server:
        result = cli("score", str(pool_sample), "-o", str(out), "--model", "m", "--base-url", server.base_url,
                     "--prompt", str(prompt), "--no-progress")  # fmt: skip
    records = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert len(records) == 50
    scored = [r for r in records if r["metadata"]["score_status"] == "scored"]
    assert {r["metadata"]["score"] for r in scored} <= {0.0, 1.0, 2.0, 3.0, 4.0, 5.0}
    failed = [r for r in records if r["metadata"]["score_status"] == "failed"]
    assert len(failed) == 50 - len(scored)
    assert result.stdout.strip().splitlines()[-1].startswith(f"score: 50 records: {len(scored)} scored, ")


def test_cli_user_errors_are_one_line(cli, pool_sample: Path, tmp_path: Path) -> None:
    result = cli("refine", str(pool_sample), "-o", str(tmp_path / "o.jsonl"), "--model", "m", "--base-url",
                 "http://127.0.0.1:9/v1", "--tokenizer", "no-such-org/no-such-tokenizer", check=False)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: ") and "no-such-tokenizer" in result.stderr


# ---- a local transformers model (random tiny Llama, locally trained tokenizer), on CPU -------------------------


@pytest.fixture(scope="module")
def tiny_model(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tiny_llm import build_model

    return build_model(data_dir, tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def tiny_sample(pool_sample: Path) -> Path:
    """The first 12 rows of the pool sample: short and long answers (CPU generation is the slow part)."""
    path = pool_sample.with_name("alpaca_12.json")
    path.write_text(json.dumps(json.loads(pool_sample.read_text())[:12]))
    return path


@pytest.mark.parametrize("command", ["refine", "score"])
def test_transformers_backend_end_to_end(command: str, cli, tiny_model: Path, tiny_sample: Path, tmp_path: Path):
    out = tmp_path / f"{command}.jsonl"
    local = ["--backend", "transformers", "--model", str(tiny_model), "--tokenizer", str(tiny_model),
             "--max-prompt-tokens", "440", "--max-tokens", "6", "--local-batch-size", "12", "--no-progress",
             ]  # fmt: skip
    first = cli(command, str(tiny_sample), "-o", str(out), "--output-format", "messages", *local, check=False)
    records = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    originals, _ = load_all(str(tiny_sample))
    # 6 tokens: a random model's replies are cut off (failure `truncated`) or unreadable; whatever it wrote, the
    # outputs are complete and the stage says it failed (exit 1, a one-line count by kind)
    failed_all = all(r["metadata"][f"{command}_status"] == "failed" for r in records)
    assert first.returncode == (1 if failed_all else first.returncode)
    if first.returncode:
        assert first.returncode == 1 and f"error: {command}: " in first.stderr.splitlines()[-1]
    assert [r["id"] for r in records] == [o.id for o in originals]
    status_key = f"{command}_status"
    statuses = [r["metadata"][status_key] for r in records]
    failures_file = out.parent / f"{command}.failures.jsonl"
    failures = (
        [orjson.loads(line) for line in failures_file.read_bytes().splitlines()] if failures_file.exists() else []
    )
    assert [f["id"] for f in failures] == [r["id"] for r in records if r["metadata"][status_key] == "failed"]
    # A random model rarely writes a readable reply: whatever it wrote, each failure says why and keeps its reply.
    assert all(f["status"] in {"parse_failed", "over_budget", "call_failed"} and f["error"] for f in failures)
    assert all(f["error"].startswith("truncated") for f in failures if f["status"] == "call_failed")
    assert all(f["raw"] is not None for f in failures if f["status"] == "parse_failed")
    truncated = sum(bool(r["metadata"].get(f"{command}_truncated")) for r in records)
    assert truncated > 0  # 440 prompt tokens of the tiny tokenizer: long answers are cut
    for record, original in zip(records, originals, strict=True):
        assert record["messages"][-1]["content"].strip()
        if command == "refine":
            assert record["metadata"]["original_response"] == original.response
    summary = first.stdout.strip().splitlines()[-1]
    if command == "refine":
        counted = {s: statuses.count(s) for s in ("refined", "unchanged", "failed")}
        assert f"{counted['refined']} refined, {counted['unchanged']} unchanged, {counted['failed']} failed" in summary
    else:
        assert f"{statuses.count('scored')} scored, {statuses.count('failed')} failed" in summary
    assert f"{truncated} answers cut to 440 prompt tokens, counted with the tokenizer" in summary
    assert f"{12 - sum(f['status'] == 'over_budget' for f in failures)} calls sent, 0 cached" in summary


def test_user_prompt_file_serves_every_record(tmp_path: Path) -> None:
    prompt = tmp_path / "terse.toml"
    prompt.write_text(
        'name = "terse"\nsampling = {temperature = 0, max_tokens = 64}\n[prompt]\nsystem = "Be brief."\nuser = """\n'
        'Task: {instruction}\nInput: {input}\nAnswer: {answer}\nReply as [Better Answer] ... [End].\n"""\n'
    )
    records = [*case_records(1), *case_records(2, with_input=True)[1:]]
    with LocalChatServer(lambda r: "**Better Answer:** Shorter.") as server:
        result = refine(records, settings(server, tmp_path), prompt=prompt)
        bodies = [e.request.body for e in server.log]
    assert [r.metadata["refine_status"] for r in result.records] == ["refined", "refined"]
    assert {b["messages"][0]["content"] for b in bodies} == {"Be brief."}
    assert sorted(b["messages"][1]["content"].split("\n")[1] for b in bodies) == ["Input: ", "Input: some input"]
    assert {b["max_tokens"] for b in bodies} == {64}


def test_max_tokens_overrides_the_prompt_files_limit(tmp_path: Path) -> None:
    with LocalChatServer(lambda r: "3\nok") as server:
        score(case_records(1), settings(server, tmp_path), max_tokens=32)
        refine(case_records(1), settings(server, tmp_path))
        assert [e.request.body["max_tokens"] for e in server.log] == [32, 2048]
