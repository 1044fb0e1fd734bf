"""The LLM commands as a user runs them (real subprocesses) against the real local server: resume after SIGKILL,
no API key on disk, cache commands, ping, dry run, and the shared LLM flags."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import typer

from longsift.llm import Cache, ChatRequest, LLMSettings, run_requests
from longsift.llm.cache import default_location
from longsift.llm.server import Faults, LocalChatServer

REPO = Path(__file__).resolve().parents[1]
KEY = "sk-longsift-test-7f3a9c1e5b"


def write_prompts(path: Path, n: int) -> list[str]:
    prompts = [f"prompt number {i}" for i in range(n)]
    path.write_bytes(b"".join(orjson.dumps({"id": f"p{i}", "prompt": p}) + b"\n" for i, p in enumerate(prompts)))
    return prompts


def read_jsonl(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_sigkill_mid_run_then_rerun_sends_no_answered_request_again(tmp_path, cli):
    prompts = write_prompts(tmp_path / "prompts.jsonl", 300)
    out, cache = tmp_path / "out" / "answers.jsonl", tmp_path / "cache.sqlite"
    with LocalChatServer(latency=0.02) as server:
        args = ["llm", "run", str(tmp_path / "prompts.jsonl"), "-o", str(out), "--base-url", server.base_url,
                "--model", "m", "--concurrency", "4", "--cache", str(cache), "--no-progress"]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        process = subprocess.Popen([sys.executable, "-m", "longsift", *args], env=env, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while len(server.log) < 60 and time.monotonic() < deadline:
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        assert process.wait(10) == -signal.SIGKILL
        time.sleep(0.1)  # requests already at the server finish (latency 20 ms)
        before = len(server.log)
        served = {e.prompt for e in server.log.entries() if e.outcome == "ok"}
        assert 60 <= len(served) < 300, "the kill must land mid-run"
        assert not out.exists()
        with Cache(cache) as store:
            committed = {entry.request["messages"][-1]["content"] for entry in store.entries(status="ok")}
        assert committed <= served and len(served - committed) <= 4  # at most the in-flight answers are lost

        cli(*args)
        resent = Counter(e.prompt for e in server.log.entries()[before:])
    assert not set(resent) & committed  # no request that had been answered is sent again
    assert set(resent) == set(prompts) - committed and max(resent.values()) == 1
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == [f"p{i}" for i in range(300)]
    assert all(r["status"] == "ok" and r["text"] == f"echo: {p}" for r, p in zip(rows, prompts, strict=True))
    assert sum(r["cached"] for r in rows) == len(committed)


def test_api_key_is_sent_as_bearer_and_never_written(tmp_path, cli):
    write_prompts(tmp_path / "prompts.jsonl", 40)
    env = {"OPENAI_API_KEY": KEY, "MY_WRONG_KEY": KEY + "-wrong"}
    faults = Faults.spread(0.3, timeout_sleep=0.3, retry_after=0.01, seed=1)
    with LocalChatServer(latency=0.002, faults=faults, api_key=KEY) as server:
        common = ["--base-url", server.base_url, "--model", "gpt-4o-mini", "--timeout", "0.2", "--max-attempts", "2",
                  "--backoff", "0.01"]  # fmt: skip
        out = tmp_path / "run" / "answers.jsonl"
        own_cache = ["--cache", str(tmp_path / "run" / "llm-cache.sqlite")]  # inside tmp_path: checked for the key
        outputs = [
            cli("llm", "run", str(tmp_path / "prompts.jsonl"), "-o", str(out), *common, *own_cache, env=env),
            cli("llm", "ping", *common, env=env),
            # a wrong key: the 401 and its reason are recorded, the key is not
            cli(
                "llm",
                "run",
                str(tmp_path / "prompts.jsonl"),
                "-o",
                str(tmp_path / "wrong" / "a.jsonl"),
                *common,
                "--api-key-env",
                "MY_WRONG_KEY",
                "--cache",
                str(tmp_path / "wrong" / "llm-cache.sqlite"),
                env=env,
                check=False,
            ),  # fmt: skip
        ]
        assert outputs[-1].returncode == 1  # every call failed: the answers file is written, the exit says so
        cache = tmp_path / "run" / "llm-cache.sqlite"
        outputs.append(cli("llm", "cache", "export", "--cache", str(cache), "-o", str(tmp_path / "export.jsonl")))
        outputs.append(cli("llm", "cache", "stats", "--cache", str(cache), "--json"))
        auth = Counter(e.request.authorization for e in server.log)
    assert set(auth) == {f"Bearer {KEY}", f"Bearer {KEY}-wrong"} and auth[f"Bearer {KEY}"] >= 40
    wrong = read_jsonl(tmp_path / "wrong" / "a.jsonl")
    assert all(r["status"] == "failed" and r["error"].startswith("HTTP 401") for r in wrong)
    assert cache.is_file() and (tmp_path / "wrong" / "llm-cache.sqlite").is_file()
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) >= 6
    secret = KEY.encode()
    assert [p for p in written if secret in p.read_bytes()] == []
    assert all(KEY not in o.stdout + o.stderr for o in outputs)


def test_rerun_with_retry_failed_and_dry_run_from_the_cli(tmp_path, cli):
    write_prompts(tmp_path / "prompts.jsonl", 30)
    out = tmp_path / "answers.jsonl"
    with LocalChatServer(faults=Faults(rate_500=0.5, seed=2)) as server:
        common = ["-o", str(out), "--base-url", server.base_url, "--model", "gpt-4o", "--max-attempts", "1",
                  "--backoff", "0.01", "--max-failed", "0.9"]  # fmt: skip
        dry = cli("llm", "run", str(tmp_path / "prompts.jsonl"), *common, "--dry-run")
        assert len(server.log) == 0 and "to send:        30" in dry.stdout and "estimated cost: $" in dry.stdout
        first = cli("llm", "run", str(tmp_path / "prompts.jsonl"), *common)
        failed = {r["id"] for r in read_jsonl(out) if r["status"] == "failed"}
        assert failed and "failed" in first.stdout
        assert "req/s" in first.stderr and "spent $0.0" in first.stderr  # the progress bar, with the spend
        dry = cli("llm", "run", str(tmp_path / "prompts.jsonl"), *common, "--dry-run")
        assert f"cached:         {30 - len(failed)}" in dry.stdout
        before = len(server.log)
        cli("llm", "run", str(tmp_path / "prompts.jsonl"), *common, "--retry-failed", "--max-attempts", "5")
        resent = {e.prompt for e in server.log.entries()[before:]}
    assert resent == {f"prompt number {i[1:]}" for i in failed}
    assert all(r["status"] == "ok" for r in read_jsonl(out))


def test_cache_stats_export_and_clear(tmp_path, cli):
    cache = tmp_path / "c.sqlite"
    with LocalChatServer(faults=Faults(rate_500=0.4, seed=5)) as server:
        settings = LLMSettings(base_url=server.base_url, model="m", cache=cache, max_attempts=1, progress=False)
        run_requests([ChatRequest.of(f"prompt number {i}") for i in range(10)], settings)
    stats = orjson.loads(cli("llm", "cache", "stats", "--cache", str(cache), "--json").stdout)
    assert stats["ok"] + stats["failed"] == 10 and stats["failed"] > 0
    cli("llm", "cache", "export", "--cache", str(cache), "-o", str(tmp_path / "x.jsonl"), "--status", "failed")
    exported = read_jsonl(tmp_path / "x.jsonl")
    assert len(exported) == stats["failed"] and all(e["error"].startswith("HTTP 500") for e in exported)
    assert exported[0]["request"]["messages"][0]["content"].startswith("prompt number")
    cleared = cli("llm", "cache", "clear", "--cache", str(cache), "--failed", "--yes")
    assert f"deleted {stats['failed']} rows" in cleared.stdout
    with Cache(cache) as store:
        assert store.stats()["failed"] == 0 and store.stats()["ok"] == 10 - len(exported)
    missing = cli("llm", "cache", "stats", "--cache", str(tmp_path / "none.sqlite"), check=False)
    assert missing.returncode == 2 and "no such cache file" in missing.stderr


def test_ping_and_user_errors_are_one_line(tmp_path, cli):
    with LocalChatServer(model="served-model") as server:
        url = server.base_url
        ok = cli("llm", "ping", "--base-url", server.base_url, "--model", "served-model")
        assert (
            "served models: served-model" in ok.stdout
            and "reply: 'echo: Reply with the single word: pong'" in ok.stdout
        )
        unknown = cli("llm", "ping", "--base-url", server.base_url, "--model", "m", check=False)
        assert unknown.returncode == 2 and len(server.log) == 1  # said at once: nothing sent for the unknown model
        message = unknown.stderr.strip()
        assert message.startswith("error: model 'm' is not served at") and "served-model" in message
        bad = cli("llm", "ping", "--base-url", server.base_url, "--model", "m", "--concurrency", "0", check=False)
        assert bad.returncode == 2 and bad.stderr.strip() == "error: --concurrency must be at least 1, got 0"
    down = cli("llm", "ping", "--base-url", url, "--model", "m", "--max-attempts", "1", check=False)
    assert down.returncode == 2 and "ping failed: connection error" in down.stderr
    env = {"OPENAI_API_KEY": ""}
    remote = cli("llm", "ping", "--base-url", "https://api.example.com/v1", "--model", "m", env=env, check=False)
    assert remote.returncode == 2 and "set the environment variable OPENAI_API_KEY" in remote.stderr


def test_every_llm_command_shares_the_contract_flags(cli):
    flags = ["--base-url", "--model", "--api-key-env", "--backend", "--concurrency", "--timeout", "--cache",
             "--retry-failed", "--dry-run", "--rpm", "--tpm"]  # fmt: skip
    for command in (["llm", "run"], ["llm", "ping"]):
        help_text = cli(*command, "--help", env={"COLUMNS": "200"}).stdout
        assert [f for f in flags if f not in help_text] == []


def test_importing_longsift_and_the_llm_layer_stays_light():
    code = (
        "import sys, longsift, longsift.llm, longsift.llm.server, longsift.cli.llm;"
        "print(sorted(m for m in ('torch', 'transformers', 'vllm', 'openai', 'datasets') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert result.stdout.strip() == "[]"


def test_llm_options_decorator_for_other_stages(tmp_path):
    from typer.testing import CliRunner

    from longsift.cli.llm_options import llm_options
    from longsift.options import with_aliases

    app = typer.Typer()
    seen = {}

    @app.command()
    @with_aliases  # what longsift.cli.build() applies to every command: the old spellings of the flags
    @llm_options
    def judge(a: Path, b: Path, output: Path = typer.Option(..., "-o"), template: str = "paper", *, llm: LLMSettings):
        seen.update(a=a, b=b, output=output, template=template, llm=llm)

    args = ["A.json", "B.json", "-o", str(tmp_path / "out"), "--judge-model", "gpt-4o", "--concurrency", "3",
            "--rpm", "60", "--retry-failed", "--timeout", "9", "--api-key-env", "JUDGE_KEY",
            "--template", "fastchat"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.stderr.count("warning: --judge-model is deprecated, use --model") == 1
    llm = seen["llm"]
    assert (seen["a"], seen["template"]) == (Path("A.json"), "fastchat")
    assert (llm.model, llm.concurrency, llm.rpm, llm.retry_failed, llm.timeout) == ("gpt-4o", 3, 60.0, True, 9.0)
    assert llm.api_key_env == "JUDGE_KEY" and llm.backend == "openai" and not llm.dry_run
    assert llm.cache_path(seen["output"]) == default_location()  # one cache home, whatever the output
