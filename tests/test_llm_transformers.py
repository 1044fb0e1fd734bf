"""Local backends: a tiny random Llama with a locally trained tokenizer, loaded with from_pretrained; batched
generation, chat template and fallback, cache, exact token counts, `longsift serve`, and vllm's absence."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_llm import build_model

from longsift.errors import ConfigError, MissingDependencyError
from longsift.llm import Cache, ChatRequest, Engine, LLMSettings, Sampling, TokenCounter, dry_run, run_requests
from longsift.llm.backends import BACKENDS
from longsift.llm.backends.transformers_local import TransformersBackend
from longsift.llm.cache import default_location

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, data_dir) -> Path:
    return build_model(data_dir, tmp_path_factory.mktemp("tiny") / "chat-model")


@pytest.fixture(scope="module")
def plain_model(tmp_path_factory, data_dir) -> Path:
    return build_model(data_dir, tmp_path_factory.mktemp("tiny") / "plain-model", chat_template=False)


def prompts(n: int, max_tokens: int = 8) -> list[ChatRequest]:
    words = ["Give", "three", "tips", "for", "staying", "healthy", "and", "explain", "why", "each", "one", "matters"]
    return [ChatRequest.of(" ".join(words[: 2 + 3 * i]), Sampling(max_tokens=max_tokens)) for i in range(n)]


def test_batched_generation_with_the_chat_template(tiny_model):
    backend = BACKENDS.get("transformers")(str(tiny_model), batch_size=4)
    requests = [ChatRequest.of([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])]
    assert backend.runner.chat_prompt(requests[0].message_dicts()) == (
        "<s><|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\n",
        False,
    )
    completions = backend.generate_batch(prompts(4))
    assert len(completions) == 4 and all(c.text.strip() for c in completions)
    assert all(c.usage.completion_tokens <= 8 and c.finish_reason in ("stop", "length") for c in completions)
    assert [c.usage.prompt_tokens for c in completions] == sorted(c.usage.prompt_tokens for c in completions)
    assert completions[0].usage.prompt_tokens < completions[-1].usage.prompt_tokens  # padding not counted
    # left padding: greedy answers in a batch are the answers one at a time
    alone = [backend.generate_batch([r])[0].text for r in prompts(4)]
    assert [c.text for c in completions] == alone


def test_tokenizer_without_chat_template_uses_the_fallback(plain_model):
    backend = TransformersBackend(str(plain_model))
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    request = ChatRequest.of(messages, Sampling(max_tokens=4))
    assert backend.runner.chat_prompt(request.message_dicts()) == ("System: S\n\nUser: U\n\nAssistant:", True)
    assert backend.generate_batch([request])[0].text


def test_engine_caches_local_generations_and_sampling_is_seeded(tiny_model, tmp_path):
    settings = LLMSettings(backend="transformers", model=str(tiny_model), batch_size=3,
                           cache=tmp_path / "c.sqlite", progress=False)  # fmt: skip
    sampled = [ChatRequest.of("Tell me a story", Sampling(temperature=1.0, max_tokens=6, seed=s, n=2)) for s in (1, 2)]
    first = run_requests([*prompts(5), *sampled], settings)
    assert first.stats.ok + first.stats.failed == 7 and first.stats.sent == 7 and first.stats.cost is None  # no price
    # 6 tokens: most replies are cut off, failures `truncated` kept with their reply (final: not generated again)
    assert all(r.ok or (r.error.startswith("truncated") and r.completion is not None) for r in first)
    assert len(first[5].completion.choices) == 2 and first[5].text != first[6].text
    again = run_requests([*prompts(5), *sampled], settings)
    assert again.stats.sent == 0 and [r.text for r in again] == [r.text for r in first]
    with Cache(tmp_path / "c.sqlite") as cache:
        assert {e.model for e in cache.entries()} == {str(tiny_model.resolve())}
    # the same seed samples the same text again (no cache)
    repeat = run_requests(sampled, LLMSettings(backend="transformers", model=str(tiny_model), no_cache=True,
                                                progress=False))  # fmt: skip
    assert [r.completion.choices for r in repeat] == [r.completion.choices for r in first[5:]]


def test_stop_strings_cut_the_text(tiny_model):
    backend = TransformersBackend(str(tiny_model))
    free = backend.generate_batch([ChatRequest.of("Hello there", Sampling(max_tokens=12))])[0].text
    marker = free.strip()[2:4]
    stopped = backend.generate_batch([ChatRequest.of("Hello there", Sampling(max_tokens=12, stop=(marker,)))])[0]
    assert stopped.text == free[: free.index(marker)] and stopped.finish_reason == "stop"


def test_token_counts_and_truncation_with_a_real_tokenizer(tiny_model, tmp_path):
    counter = TokenCounter.load(str(tiny_model))
    text = "Give three tips for staying healthy. " * 10
    assert counter.exact and counter.count(text) > 10
    cut = counter.truncate(text, 7)
    assert text.startswith(cut) and counter.count(cut) <= 7 and counter.count(text[: len(cut) + 8]) > 7
    estimate = TokenCounter(chars_per_token=3.0)
    assert estimate.count("x" * 30) == 10 and estimate.truncate("x" * 30, 4) == "x" * 12
    with pytest.raises(ConfigError, match="cannot load the tokenizer 'no/such-tokenizer'"):
        TokenCounter.load("no/such-tokenizer")
    # a local model's dry run counts with its own tokenizer
    settings = LLMSettings(backend="transformers", model=str(tiny_model), cache=tmp_path / "c.sqlite")
    with Engine.from_settings(settings) as engine:
        report = dry_run(prompts(3), engine)
    assert report.input_tokens == sum(counter.count_messages(r.messages) for r in prompts(3))
    assert "counted with the tokenizer" in report.token_basis


def test_missing_model_is_a_clear_error(tmp_path):
    backend = TransformersBackend(str(tmp_path / "absent"))
    with pytest.raises(ConfigError, match="cannot load the model"):
        backend.generate_batch(prompts(1))


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
def test_vllm_backend_without_vllm_says_what_to_install():
    with pytest.raises(MissingDependencyError, match=r"pip install 'longsift\[vllm\]'"):
        BACKENDS.get("vllm")("some/model")


@pytest.mark.slow  # a second process importing torch + transformers; `serve` below covers that path by default
def test_llm_run_cli_with_the_transformers_backend(tiny_model, tmp_path, cli):
    lines = [f'{{"id": "q{i}", "prompt": "Name {i} colours"}}' for i in range(4)]
    (tmp_path / "p.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out" / "a.jsonl"
    args = ["llm", "run", str(tmp_path / "p.jsonl"), "-o", str(out), "--backend", "transformers",
            "--model", str(tiny_model), "--max-tokens", "6", "--local-batch-size", "2"]  # fmt: skip
    done = cli(*args, check=False)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    # 6 tokens of a random model: answers, or replies cut off (`truncated`), never counted as answers
    assert all(r["status"] == "ok" or r["error"].startswith("truncated") for r in rows) and len(rows) == 4
    ok = sum(r["status"] == "ok" for r in rows)
    assert f"4 requests (4 distinct): {ok} ok (0 from cache), {4 - ok} failed" in done.stdout
    assert done.returncode == (1 if ok < 2 else 0)
    with Cache(default_location()) as cache:  # the default cache: one place for every command
        assert [e.backend for e in cache.entries()] == ["transformers"] * 4


def test_serve_exposes_a_local_model_over_the_openai_protocol(tiny_model, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "longsift", "serve", str(tiny_model), "--port", "0", "--model-name", "tiny"]
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        banner = server.stdout.readline()
        assert banner.startswith(f"serving {tiny_model} as 'tiny' on http://127.0.0.1:"), banner
        base_url = banner.split(" on ")[1].strip()
        settings = LLMSettings(base_url=base_url, model="tiny", no_cache=True, progress=False, max_attempts=1)
        report = run_requests(prompts(3, max_tokens=5), settings)
        local = TransformersBackend(str(tiny_model)).generate_batch(prompts(3, max_tokens=5))
    finally:
        server.terminate()
        server.wait(10)
    # answers, or replies cut off at 5 tokens (failures `truncated` that keep the reply): as the local backend says
    expected = ["ok" if c.finish_reason == "stop" else "failed" for c in local]
    assert [r.status for r in report] == expected
    assert all(r.ok or r.error.startswith("truncated") for r in report)
    assert [r.text for r in report] == [c.text for c in local]  # the same model, greedy, over HTTP
    assert all(r.completion.usage.completion_tokens <= 5 for r in report)
