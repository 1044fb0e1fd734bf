"""PromptTask: prompt files, formatting records, parsing replies, resampling, re-parsing from the cache, dry runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from longsift.errors import ConfigError, ParseError, UnknownNameError
from longsift.llm import (
    ChatRequest,
    Engine,
    LLMSettings,
    PromptTask,
    Sampling,
    TokenCounter,
    dry_run,
    parse_json,
    parse_number,
    run_task,
)
from longsift.llm.prompt_file import parse_prompt_text
from longsift.llm.server import LocalChatServer, ScriptedError
from longsift.records import Example, Message

SCORE_PROMPT = '''\
name = "score"
parser = "number"
expected_output_tokens = 3

[sampling]
temperature = 0
max_tokens = 16

[prompt]
system = """You rate answers. Reply like {{"score": N}} or with the bare number."""
user = """
[Instruction]
{instruction}

[Answer]
{response}"""
'''


def write_prompt(tmp_path: Path, text: str = SCORE_PROMPT) -> Path:
    path = tmp_path / "score.toml"
    path.write_text(text, encoding="utf-8")
    return path


def engine_for(server: LocalChatServer, tmp_path: Path, **overrides) -> Engine:
    values = dict(base_url=server.base_url, model="judge", cache=tmp_path / "cache.sqlite", progress=False,
                  backoff_base=0.001, max_attempts=2)  # fmt: skip
    return Engine.from_settings(LLMSettings(**{**values, **overrides}))


def examples(n: int) -> list[Example]:
    return [Example.from_alpaca(f"Say {i}", "", f"answer {i}", id=f"ex{i}") for i in range(n)]


def test_prompt_file_sections_placeholders_and_defaults(tmp_path):
    task = PromptTask.from_file(write_prompt(tmp_path))
    assert task.name == "score" and task.parser is parse_number and task.expected_output_tokens == 3
    assert task.sampling == Sampling(temperature=0.0, max_tokens=16)
    assert task.placeholders == {"instruction", "response"}
    system, user = task.format(examples(1)[0])
    assert system == Message("system", 'You rate answers. Reply like {"score": N} or with the bare number.')
    assert user.content == "[Instruction]\nSay 0\n\n[Answer]\nanswer 0"


def test_format_takes_mappings_attributes_or_a_fields_function(tmp_path):
    task = PromptTask.from_file(write_prompt(tmp_path))
    assert task.format({"instruction": "i", "response": "r", "extra": 1})[1].content.startswith("[Instruction]\ni\n")
    mapped = task.but(fields=lambda ex: {"instruction": ex.instruction.upper(), "response": ex.response[:3]})
    assert mapped.format(examples(1)[0])[1].content == "[Instruction]\nSAY 0\n\n[Answer]\nans"
    values_with_braces = task.format({"instruction": "{response}", "response": "{x}"})[1].content
    assert values_with_braces == "[Instruction]\n{response}\n\n[Answer]\n{x}"  # values are not templates
    with pytest.raises(ConfigError, match=r"needs \['response'\] but record 'r1'"):
        task.format({"id": "r1", "instruction": "i"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('name = "x"\nparser = "text"\n', "no \\[prompt\\] table"),
        ('parser = "text"\n[prompt]\nsystem = "only a system turn"\n', "needs a user message"),
        ('parser = "text"\ncolour = "red"\n[prompt]\nuser = "hi"\n', "unknown keys"),
        ('parser = "text"\n[prompt]\nuser = "hi"\nassistant = "ho"\n', "unknown \\[prompt\\] keys"),
        ('parser = "text"\n[prompt]\nuser = "{a.b}"\n', "not a plain"),
        ('parser = "text"\n[prompt]\nuser = "{x!r}"\n', "not a plain"),
        ('parser = "text"\n[prompt]\nuser = "{ unclosed"\n', "bad placeholder"),
        ('parser = [unclosed\n[prompt]\nuser = "hi"\n', "not a valid TOML"),
        ("parser: text\n--- user\nhi\n", "prompt files are TOML"),
    ],
)
def test_prompt_file_errors_name_the_problem(text, message):
    with pytest.raises(ConfigError, match=message):
        PromptTask.from_prompt(parse_prompt_text(text, "bad.toml"))


def test_prompt_file_parser_names_and_sampling_are_checked():
    with pytest.raises(UnknownNameError, match="Did you mean 'number'"):
        PromptTask.from_prompt(parse_prompt_text('parser = "numbr"\n[prompt]\nuser = "hi"\n'))
    with pytest.raises(ConfigError, match="bad sampling"):
        bad_sampling = 'parser = "text"\nsampling = {temprature = 1}\n[prompt]\nuser = "hi"\n'
        PromptTask.from_prompt(parse_prompt_text(bad_sampling))
    with pytest.raises(ConfigError, match="no parser"):
        PromptTask.from_prompt(parse_prompt_text('[prompt]\nuser = "hi"\n'))
    custom = PromptTask.from_prompt(parse_prompt_text('[prompt]\nuser = "hi"\n'), parser=str.upper)
    assert custom.parse("ok") == "OK"


def test_packaged_prompt_and_missing_one():
    ping = PromptTask.packaged("ping")
    assert ping.format({}) == (Message("user", "Reply with the single word: pong"),)
    with pytest.raises(ConfigError, match="no packaged prompt 'nope'"):
        PromptTask.packaged("nope")


def test_generic_parsers():
    assert parse_number("Score: 4.5 because") == 4.5 and parse_number("-2") == -2.0
    assert parse_json('Here: ```json\n{"a": 1}\n```') == {"a": 1}
    assert parse_json('prefix {"score": 3} suffix') == {"score": 3}
    with pytest.raises(ParseError) as caught:
        parse_number("no digits")
    assert caught.value.text == "no digits"
    with pytest.raises(ParseError):
        parse_json("not json at all")


def replies_by_instruction(replies: dict[str, str]):
    def responder(request):
        instruction = request.prompt.split("\n")[1]
        reply = replies[instruction]
        if reply == "HTTP 400":
            raise ScriptedError(400, "context too long")
        return reply

    return responder


def test_run_task_values_parse_failures_and_call_failures_keep_the_raw_reply(tmp_path):
    replies = {"Say 0": "4.5", "Say 1": "I would rate it five", "Say 2": "HTTP 400", "Say 3": "Score: 2"}
    task = PromptTask.from_file(write_prompt(tmp_path))
    with LocalChatServer(replies_by_instruction(replies)) as server, engine_for(server, tmp_path) as engine:
        report = run_task(task, examples(4), engine)
    assert [r.status for r in report] == ["ok", "parse_failed", "call_failed", "ok"]
    assert [r.value for r in report] == [4.5, None, None, 2.0]
    assert report[1].raw == "I would rate it five" and report[1].error == "no number in the reply"
    assert report[2].raw is None and report[2].error.startswith("HTTP 400: context too long")
    assert report[0].record.id == "ex0" and report[0].calls[0].request.tag == "ex0"
    assert report.counts() == {"ok": 2, "parse_failed": 1, "call_failed": 1, "skipped": 0}
    assert "2 ok, 1 unparseable, 1 call failures" in report.summary()


def test_reparsing_with_a_fixed_parser_costs_no_new_call(tmp_path):
    replies = {f"Say {i}": f"five{'!' * i}" for i in range(5)}
    task = PromptTask.from_file(write_prompt(tmp_path))
    with LocalChatServer(replies_by_instruction(replies)) as server:
        with engine_for(server, tmp_path) as engine:
            first = run_task(task, examples(5), engine)
        assert first.counts()["parse_failed"] == 5 and len(server.log) == 5

        def words(text: str) -> int:
            if not text.startswith("five"):
                raise ParseError("expected 'five'", text)
            return 5

        with engine_for(server, tmp_path, cache_only=True) as engine:
            fixed = run_task(task.but(parser=words), examples(6), engine)
        assert len(server.log) == 5  # not one new request
    assert [r.value for r in fixed][:5] == [5] * 5 and fixed.sent == 0
    assert [r.raw for r in fixed][:5] == [r.raw for r in first]
    assert fixed[5].status == "skipped" and fixed[5].error == "not in the cache (cache-only run)"


def test_resampling_on_parse_error_only_when_allowed(tmp_path):
    def responder(request):
        body = request.body
        return "3" if body.get("seed") == 2 else "unsure"  # only the second resample parses

    task = PromptTask.from_file(write_prompt(tmp_path))
    with LocalChatServer(responder) as server:
        with engine_for(server, tmp_path) as engine:
            plain = run_task(task, examples(1), engine)
        assert plain[0].status == "parse_failed" and len(server.log) == 1
        with engine_for(server, tmp_path) as engine:
            resampled = run_task(task, examples(1), engine, resample_on_parse_error=3)
        bodies = [e.request.body for e in server.log]
    assert resampled[0].status == "ok" and resampled[0].value == 3.0
    assert resampled[0].raws == ("unsure", "unsure", "3") and len(resampled.rounds) == 3
    # the first sample came from the cache; each resample has its own seed and, as the task was greedy, some heat
    assert [(b.get("seed"), b["temperature"]) for b in bodies[1:]] == [(1, 0.7), (2, 0.7)]


def test_dry_run_counts_calls_cache_tokens_and_cost(tmp_path):
    task = PromptTask.from_file(write_prompt(tmp_path))
    records = examples(6)
    requests = task.requests(records) + task.requests(records[:2])  # duplicates are one call
    with LocalChatServer(lambda request: "4") as server:
        with engine_for(server, tmp_path, model="gpt-4o-mini") as engine:
            run_task(task, records[:2], engine)
            report = dry_run(requests, engine, expected_output_tokens=task.expected_output_tokens)
        assert len(server.log) == 2  # the dry run sent nothing
    assert (report.requests, report.calls, report.cached, report.to_send) == (8, 6, 2, 4)
    counter = TokenCounter()
    expected_in = sum(counter.count_messages(r.messages) for r in task.requests(records[2:]))
    assert report.input_tokens == expected_in and report.output_tokens == 12
    assert report.cost == pytest.approx((expected_in * 0.15 + 12 * 0.60) / 1e6)
    text = report.render()
    assert "estimated at 4 characters per token" in text and "to send:        4" in text


def test_dry_run_without_a_price_says_unknown(tmp_path):
    with LocalChatServer() as server, engine_for(server, tmp_path, model="my-local-model") as engine:
        report = dry_run([ChatRequest.of("hello", Sampling(max_tokens=100))], engine)
    assert report.cost is None and report.output_tokens == 100 and "no price known" in report.render()


def test_two_tasks_at_once_on_one_engine(tmp_path):
    import asyncio

    from longsift.llm import arun_task

    task = PromptTask.from_file(write_prompt(tmp_path))
    other = task.but(sections=(("user", "Again: {instruction}"),), parser=str.strip)
    with LocalChatServer(latency=0.01) as server, engine_for(server, tmp_path, concurrency=4) as engine:

        async def both():
            return await asyncio.gather(arun_task(task, examples(20), engine), arun_task(other, examples(20), engine))

        first, second = asyncio.run(both())
        assert len(server.log) == 40
    assert [r.value for r in first] == [float(i) for i in range(20)]  # "echo: [Instruction]\nSay i ..."
    assert [r.value for r in second] == [f"echo: Again: Say {i}" for i in range(20)]
