"""ifd / superfilter: the batched score equals Cherry LLM's computation done by hand, one forward pass per record."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest

from longsift.formats.load import load
from longsift.models.hf import TransformersRunner
from longsift.select import select
from longsift.select.ifd import ifd_scores
from longsift.select.scoring import Skip
from longsift.tiny import build_tiny_model, example_texts

ROWS = 240
MAX_LENGTH = 160  # small enough that some records are cut and some skipped, as Cherry's 512 does on long ones
NO_INPUT = ("Below is an instruction that describes a task. Write a response that appropriately completes the "
            "request.\n\n### Instruction:\n{instruction}\n\n### Response:")  # fmt: skip
WITH_INPUT = ("Below is an instruction that describes a task, paired with an input that provides further context. "
              "Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n"
              "### Input:\n{input}\n\n### Response:")  # fmt: skip


@pytest.fixture(scope="module")
def pool(alpaca_pool: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[list, Path]:
    examples = list(itertools.islice(load(alpaca_pool), ROWS))
    folder = tmp_path_factory.mktemp("ifd")
    model = build_tiny_model(folder / "model", example_texts(examples), vocab_size=1024, hidden_size=64,
                             intermediate_size=128)  # fmt: skip
    path = folder / "pool.jsonl"
    with path.open("w") as file:
        for example in examples:
            file.write(json.dumps({"instruction": example.instruction, "input": example.input,
                                   "output": example.response}) + "\n")  # fmt: skip
    return examples, model


def cherry_ifd(model, tokenizer, record: dict, max_length: int) -> float | None:
    """Cherry LLM's IFD of one Alpaca record: data_analysis.py --mod cherry --prompt alpaca, then data_by_IFD.py,
    each text in its own forward pass with -100 labels before the answer."""
    import torch

    template = WITH_INPUT if record["input"] else NO_INPUT
    instruction = template.format_map(record)
    whole, alone, output = instruction + record["output"], "### Response:" + record["output"], record["output"]
    instruction_length = len(tokenizer.encode(instruction, truncation=True, max_length=max_length))

    def answer_loss(text: str, limit: int) -> tuple[float, int]:
        ids = tokenizer.encode(text, return_tensors="pt", truncation=True, max_length=limit)
        start = len(tokenizer.encode(text[: text.rfind(output)]))
        labels = ids.clone()
        labels[0, :start] = -100
        with torch.no_grad():
            loss = model(ids, labels=labels).loss
        return float(loss), ids.shape[1] - start

    if max_length - instruction_length - 2 <= 4:
        return None
    mean_alone, count_alone = answer_loss(alone, max_length - instruction_length - 2)
    mean_whole, count_whole = answer_loss(whole, max_length)
    if count_alone <= 0 or count_whole <= 0 or instruction_length + count_alone > max_length:
        return None
    return mean_whole / mean_alone


def test_batched_ifd_equals_one_record_at_a_time(pool) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    examples, model_path = pool
    model = AutoModelForCausalLM.from_pretrained(model_path).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    records = [{"instruction": e.instruction, "input": e.input, "output": e.response} for e in examples]
    expected = [cherry_ifd(model, tokenizer, record, MAX_LENGTH) for record in records]
    runner = TransformersRunner(str(model_path))
    for side in ("left", "right"):  # the tokenizer's padding side must not change a score
        runner.tokenizer.padding_side = side
        got = ifd_scores(runner, examples, max_length=MAX_LENGTH, batch_size=16)
        assert [isinstance(g, Skip) for g in got] == [e is None for e in expected]
        pairs = [(g, e) for g, e in zip(got, expected, strict=True) if e is not None]
        assert len(pairs) >= 200
        assert max(abs(g - e) for g, e in pairs) < 1e-5  # type: ignore[operator]
    assert any(e is None for e in expected)  # the max-length rule was exercised


def test_select_ifd_keeps_the_highest_below_one(pool, tmp_path: Path) -> None:
    examples, model_path = pool
    examples = examples[:80]  # the equality on every row is the test above; this one checks the selection rule
    runner = TransformersRunner(str(model_path))
    scores = ifd_scores(runner, examples, max_length=MAX_LENGTH)
    source = tmp_path / "pool.jsonl"
    with source.open("w") as file:
        for e in examples:
            file.write(json.dumps({"instruction": e.instruction, "input": e.input, "output": e.response}) + "\n")
    eligible = sorted(((s, -i) for i, s in enumerate(scores) if not isinstance(s, Skip) and s <= 1), reverse=True)
    want = sorted(-i for _, i in eligible[:15])
    selection = select(source, method="ifd", k=15, model=str(model_path), ifd_max_length=MAX_LENGTH)
    assert [e.row for e in selection.examples] == want
    for example in selection.examples:
        assert math.isclose(example.metadata["ifd"], scores[example.row], rel_tol=1e-9)  # type: ignore[arg-type]
    above = sum(1 for s in scores if not isinstance(s, Skip) and s > 1)
    assert selection.summary.dropped.get("IFD above 1", 0) == above
    kept_all = select(source, method="ifd", model=str(model_path), ifd_max_length=MAX_LENGTH, keep_ifd_above_one=True)
    assert len(kept_all.examples) == sum(1 for s in scores if not isinstance(s, Skip))


def test_superfilter_is_ifd_with_its_own_default_model(pool, tmp_path: Path) -> None:
    from longsift.errors import ConfigError
    from longsift.select import make_plan

    examples, model_path = pool
    assert make_plan("superfilter").method.scorer == "openai-community/gpt2"  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="needs --model"):
        make_plan("ifd")
    source = tmp_path / "pool.jsonl"
    with source.open("w") as file:
        for e in examples[:30]:
            file.write(json.dumps({"instruction": e.instruction, "input": e.input, "output": e.response}) + "\n")
    a = select(source, method="superfilter", k=10, model=str(model_path))
    b = select(source, method="ifd", k=10, model=str(model_path))
    assert [e.row for e in a.examples] == [e.row for e in b.examples]
    assert a.summary.method["method"] == "superfilter"


def test_cli_select_ifd_writes_the_same_selection(pool, tmp_path: Path, cli) -> None:
    """The README's `longsift select pool.jsonl -o ifd-1k.jsonl --method ifd --k ... --model M`, as written."""
    examples, model_path = pool
    source = tmp_path / "pool.jsonl"
    with source.open("w") as file:
        for e in examples[:40]:
            file.write(json.dumps({"instruction": e.instruction, "input": e.input, "output": e.response}) + "\n")
    output = tmp_path / "ifd-8.jsonl"
    cli("select", str(source), "-o", str(output), "--method", "ifd", "--k", "8", "--model", str(model_path))
    written = [json.loads(line) for line in output.read_text().splitlines()]
    api = select(source, method="ifd", k=8, model=str(model_path))
    assert len(written) == len(api.examples) == 8
    assert [w["metadata"]["ifd"] for w in written] == [e.metadata["ifd"] for e in api.examples]


def test_a_records_ifd_does_not_depend_on_the_records_batched_with_it(pool) -> None:
    """Shards on Ray batch other records together than the whole pool does: the scores must be the same bits."""
    examples, model_path = pool
    runner = TransformersRunner(str(model_path))
    whole = ifd_scores(runner, examples, max_length=MAX_LENGTH)
    shard = examples[37:151]
    assert ifd_scores(runner, shard, max_length=MAX_LENGTH) == whole[37:151]
    assert ifd_scores(runner, shard[::-1], max_length=MAX_LENGTH, batch_size=8) == whole[37:151][::-1]
    padded = runner.score_tokens([list(range(5, 5 + n)) for n in (40, 7, 33, 64)], batch_size=4)
    alone = [runner.score_tokens([list(range(5, 5 + n))], batch_size=1)[0] for n in (40, 7, 33, 64)]
    assert padded != alone  # why the shapes are fixed: plain length batching changes a row's bits
