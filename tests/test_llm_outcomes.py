"""What counts as an answer, how failures are named and bounded, and what is redacted: the LLM layer's rules."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest

from longsift.errors import ConfigError
from longsift.llm.backends.openai_compat import error_message, retry_after
from longsift.llm.cache import Cache
from longsift.llm.engine import run_requests
from longsift.llm.outcomes import check_completion, check_stage, failure_kind, parse_max_failed
from longsift.llm.redact import redact, redact_secrets
from longsift.llm.server import LocalChatServer
from longsift.llm.settings import LLMSettings
from longsift.llm.types import ChatRequest, Completion

REPO = Path(__file__).resolve().parents[1]
KEY = "sk-outcomes-TEST-4b1d9e77c2"


@pytest.mark.parametrize(
    "finish, text, kind",
    [("stop", "fine", None), ("end_turn", "fine", None), ("eos", "fine", None), (None, "fine", None),
     ("length", "cut o", "truncated"), ("max_tokens", "cut", "truncated"), ("content_filter", "x", "unfinished"),
     ("stop", "", "empty"), ("stop", " \n\t", "empty"), ("stop", "x" * 101, "oversized")],
)  # fmt: skip
def test_a_reply_counts_only_when_it_finished_and_has_text(finish, text, kind):
    rejected = check_completion(Completion(text, finish), max_chars=100)
    assert (rejected.kind if rejected else None) == kind


@pytest.mark.parametrize(
    "headers, expected",
    [({"Retry-After": "2"}, 2.0), ({"retry-after-ms": "250", "Retry-After": "9"}, 0.25),
     ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0), ({}, None), ({"Retry-After": "later"}, None),
     ({"Retry-After": "-5"}, None), ({"Retry-After": "1e12"}, None), ({"Retry-After": "inf"}, None),
     ({"Retry-After": "nan"}, None), ({"Retry-After": ""}, None), ({"Retry-After": "Wed, 99 Foo 2015 25:61 GMT"}, None),
     ({"Retry-After": "9" * 400}, None), ({"retry-after-ms": "soon", "Retry-After": "1"}, 1.0),
     ({"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT"}, None)],
)  # fmt: skip
def test_a_bad_retry_after_falls_back_to_backoff(headers, expected):
    assert retry_after(httpx.Headers(headers)) == expected


@pytest.mark.parametrize(
    "body, message",
    [(b'{"error": {"message": "Rate limit", "type": "x"}}', "Rate limit"), (b'{"error": "plain words"}', "plain words"),
     (b'{"detail": "Model not loaded"}', "Model not loaded"),
     (b'{"detail": [{"loc": ["body", "messages"], "msg": "field required", "type": "missing"}]}',
      "body.messages: field required"),
     (b'{"message": "bad gateway"}', "bad gateway"), (b"upstream\n  overloaded", "upstream overloaded"),
     (b"<html><head><style>p{}</style><title>502 Bad Gateway</title></head><body><h1>502</h1></body></html>",
      "502 Bad Gateway 502"), (b'{"detail": {"msg": "nested"}}', "nested"), (b"[1, 2]", "1; 2")],
)  # fmt: skip
def test_error_bodies_of_every_common_shape_read_as_text(body, message):
    assert error_message(body) == message


def test_redaction_removes_the_key_and_credential_patterns(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    texts = [
        f"{{'authorization': 'Bearer {KEY}', 'x': 1}}",
        f"Authorization: Bearer {KEY}",
        f"token={KEY[:-1]}",
        "x-api-key: abcdef123456",
        'api_key="zz9zz9"',
        "see bearer abc.DEF_123",
        "old key sk-abcdefghijklmnop0",
        f"cut in half: {KEY[: len(KEY) // 2]}",
        "GET https://bob:abc.DEF_123@proxy.example/v1/models failed",
    ]
    for text in texts:
        cleaned = redact(text)
        assert KEY[: len(KEY) // 2] not in cleaned and "abcdef123456" not in cleaned and "zz9zz9" not in cleaned
        assert "abc.DEF_123" not in cleaned and "sk-abcdefghijklmnop0" not in cleaned and redact(cleaned) == cleaned
    assert redact_secrets(f"an answer about Authorization: Bearer headers, with {KEY}") == (
        "an answer about Authorization: Bearer headers, with [REDACTED]"
    )


@pytest.mark.parametrize(
    "value, parsed", [(None, 0.5), ("0.2", 0.2), ("50%", 0.5), ("10", 10), ("0", 0.0), ("1", 1), ("1.0", 1.0)]
)
def test_max_failed_is_a_fraction_or_a_count(value, parsed):
    assert parse_max_failed(value) == parsed and type(parse_max_failed(value)) is type(parsed)


@pytest.mark.parametrize("value", ["lots", "-1", "1.5", "150%", "nan"])
def test_a_bad_max_failed_is_a_user_error(value):
    with pytest.raises(ConfigError, match="--max-failed"):
        parse_max_failed(value)


def test_a_stage_fails_when_every_record_or_more_than_the_threshold_failed():
    assert check_stage("s", 10, ["truncated"] * 5, 0.5) is None
    assert (
        check_stage("s", 10, ["truncated"] * 6, 0.5)
        == "s: 6 of 10 failed (more than --max-failed 0.5 (50%) failed): 6 truncated"
    )
    assert check_stage("s", 2, ["http 500", "empty"], 1.0).startswith("s: 2 of 2 failed (every record failed)")
    assert check_stage("s", 10, ["x"] * 3, 2) is not None and check_stage("s", 10, ["x"] * 2, 2) is None
    assert [failure_kind(t) for t in ("HTTP 503: busy", "timeout after 2s", "malformed response (X: y)")] == [
        "http 503", "timeout", "malformed response",
    ]  # fmt: skip


ADVERSARIAL = r"""
import sys
from longsift.refine.better_answer import parse_better_answer
from longsift.refine.rating import parse_score
from longsift.judge.mtbench_grade import parse_rating
from longsift.llm.parsers import parse_json, parse_number, safe_parse
n = 200_000
replies = [
    "[[" + "9" * n, "[[" + "9" * n + "]]", "[" + "1" * n + "." + "1" * n, "[Better Answer]" + " " * n + "x",
    "[" + " " * n + "better" + " " * n, "[End" + " " * n, "Better Answer" + " \t" * n, "1" * n + ".",
    "Score: " + "9" * n, "score" + " " * n + "1", "[" * n, "{" * n, "```" * n, "```json" + "[" * n,
    "**" * n + "[Better Answer]" + "**" * n, "\n".join(["[Better Answer] a [End]"] * 2000), "9" * 5000 + "e9999",
]
for reply in replies:
    for parser in (parse_better_answer, parse_score, parse_rating, parse_json, parse_number):
        safe_parse(parser, reply)
print("done")
"""


def test_every_parser_reads_adversarial_replies_without_crash_or_backtracking():
    # Linear parsers read these 200k-character replies in well under a second each; one quadratic pattern would
    # take hours. The generous timeout is the failure signal, not a speed target.
    done = subprocess.run([sys.executable, "-c", ADVERSARIAL], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "done", done.stderr


def test_an_unlisted_model_is_refused_at_once(tmp_path, cli):
    corpus = tmp_path / "in.jsonl"
    corpus.write_text("".join(json.dumps({"instruction": f"q{i}", "output": f"a{i}"}) + "\n" for i in range(20)))
    with LocalChatServer(models=("served-a", "served-b"), strict_models=True) as server:
        listed = cli("refine", str(corpus), "-o", str(tmp_path / "o.jsonl"), "--base-url", server.base_url,
                     "--model", "wrong", check=False)  # fmt: skip
        sent, url = len(server.log), server.base_url
    assert listed.returncode == 2 and sent == 0 and not (tmp_path / "o.jsonl").exists()
    assert listed.stderr.strip() == (
        f"error: model 'wrong' is not served at {url}; it serves: served-a, served-b "
        "(pass --no-model-check if it serves models it does not list)"
    )


def test_a_model_not_found_500_stops_the_run_instead_of_retrying(tmp_path, cli):
    corpus = tmp_path / "in.jsonl"
    corpus.write_text("".join(json.dumps({"instruction": f"q{i}", "output": f"a{i}"}) + "\n" for i in range(20)))
    with LocalChatServer(strict_models=True) as server:  # lists nothing; 500 {"detail": "Model 'x' not found..."}
        done = cli("refine", str(corpus), "-o", str(tmp_path / "o.jsonl"), "--base-url", server.base_url,
                   "--model", "wrong", "--concurrency", "2", "--max-attempts", "6", check=False)  # fmt: skip
        sent = len(server.log)
    assert done.returncode == 2 and sent <= 2 and not (tmp_path / "o.jsonl").exists()
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the endpoint does not serve model 'wrong': HTTP 500: Model 'wrong' not found")
    assert "{" not in last  # the FastAPI body reads as text, not as a Python dict


def test_odd_cached_rows_never_crash_a_rerun(tmp_path):
    path = tmp_path / "c.sqlite"
    settings = LLMSettings(base_url="http://127.0.0.1:9/v1", model="m", cache=path, progress=False, cache_only=True)
    requests = [ChatRequest.of(f"q{i}") for i in range(5)]
    with Cache(path):
        pass
    keys = [r.key("openai", "m") for r in requests]
    rows = [  # status, text, choices, finish_reason, request, error
        ("ok", None, None, None, "{}", None), ("ok", "cut", "not json", "length", "garbage", None),
        ("ok", "fine", '["fine"]', "stop", "[]", None), ("failed", None, None, None, "{}", f"Bearer {KEY}"),
        ("ok", "x" * 10, "[1, 2]", "weird", "{}", None),
    ]  # fmt: skip
    with sqlite3.connect(path) as db:
        for key, (status, text, choices, finish, body, error) in zip(keys, rows, strict=True):
            db.execute(
                "INSERT INTO calls VALUES (?, 'openai', 'm', ?, ?, ?, ?, ?, NULL, NULL, NULL, ?, 1, 0, 0)",
                (key, body, status, text, choices, finish, error),
            )
    report = run_requests(requests, settings)
    assert [r.status for r in report] == ["failed", "failed", "ok", "failed", "failed"]
    assert report[0].error.startswith("empty") and report[1].error.startswith("truncated")
    assert report[4].error.startswith("unfinished") and KEY not in report[3].error
    with Cache(path) as cache:
        exported = [orjson.dumps(e.to_dict()) for e in cache.entries()]
    assert len(exported) == 5 and not any(KEY.encode() in line for line in exported)
