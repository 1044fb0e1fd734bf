"""The fast data paths give exactly what the exact per-row path gives: lengths, summaries, quarantine.

`stats` collects lengths only (`Plan.lengths_only`: a compact array, no records held) and summarises the array
without a float copy; both must equal the exact path (every record through `schema.parse`, kept in a heap) bit
for bit, on the shared pool and on hostile files, with the same rows quarantined at the same file:line.
"""

from __future__ import annotations

import dataclasses
from array import array
from pathlib import Path

import numpy as np
import orjson
import pytest

from longsift.errors import LongsiftError
from longsift.lengths import distribution
from longsift.select import make_plan, run
from longsift.select.stats import Distribution, corpus_lengths, stats
from tests.test_hostile_inputs import CASES, HOSTILE
from tests.test_select_hot import hostile_corpus


def exact_lengths(source: Path, by: str, workers: int, quarantine: Path, **options) -> tuple[list[int], tuple]:
    """The exact path: every record parsed and kept in the heap (k=None), lengths in row order."""
    plan = make_plan("longest", None, by=by, keep_payload=False)
    outcome, _ = run(plan, source, workers=workers, quarantine=quarantine, **options)
    report = outcome.report
    return [n for _, _, (n, _) in outcome.heap.items()], (report.read, report.kept, report.quarantined)


def fast_lengths(source: Path, by: str, workers: int, quarantine: Path, **options) -> tuple[list[int], tuple]:
    plan = dataclasses.replace(make_plan("longest", None, by=by, keep_payload=False), lengths_only=True)
    outcome, _ = run(plan, source, workers=workers, quarantine=quarantine, **options)
    assert outcome.lengths is not None
    report = outcome.report
    return list(outcome.lengths), (report.read, report.kept, report.quarantined)


def same_both_ways(source: Path, by: str, workers: int, tmp_path: Path, **options) -> list[int]:
    exact = exact_lengths(source, by, workers, tmp_path / "exact.q.jsonl", **options)
    fast = fast_lengths(source, by, workers, tmp_path / "fast.q.jsonl", **options)
    assert fast == exact
    quarantines = [tmp_path / f"{name}.q.jsonl" for name in ("exact", "fast")]
    assert [q.read_bytes() if q.exists() else b"" for q in quarantines] == [
        quarantines[0].read_bytes() if quarantines[0].exists() else b""
    ] * 2  # the same rows, file:line and reasons, in the same order
    return exact[0]


@pytest.mark.parametrize("by", ["chars", "words"])
def test_stats_lengths_equal_the_exact_path_on_the_pool(alpaca_pool: Path, by: str, tmp_path: Path) -> None:
    lengths = same_both_ways(alpaca_pool, by, 2, tmp_path)
    assert len(lengths) == 18659  # the pool's 18,669 rows less its 10 empty responses


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("bad", [0.15, 0.75])
def test_stats_lengths_equal_the_exact_path_on_hostile_lines(tmp_path: Path, workers: int, bad: float) -> None:
    path = hostile_corpus(tmp_path / "hostile.jsonl", n=1500, bad=bad)
    from longsift.formats.rows import Limits

    same_both_ways(path, "chars", workers, tmp_path, limits=Limits(max_record_bytes=600))


@pytest.mark.parametrize("case", sorted(CASES))
def test_stats_lengths_equal_the_exact_path_on_hostile_files(case: str, tmp_path: Path) -> None:
    try:
        exact = exact_lengths(HOSTILE / case, "words", 2, tmp_path / "exact.q.jsonl")
    except LongsiftError as exc:
        with pytest.raises(LongsiftError) as fast_error:
            fast_lengths(HOSTILE / case, "words", 2, tmp_path / "fast.q.jsonl")
        assert str(fast_error.value) == str(exc)
        return
    assert fast_lengths(HOSTILE / case, "words", 2, tmp_path / "fast.q.jsonl") == exact
    exact_q, fast_q = tmp_path / "exact.q.jsonl", tmp_path / "fast.q.jsonl"
    assert (fast_q.read_bytes() if fast_q.exists() else b"") == (exact_q.read_bytes() if exact_q.exists() else b"")


def test_a_json_array_gives_the_same_lengths_as_its_lines(alpaca_pool: Path, tmp_path: Path) -> None:
    import gzip

    lines = gzip.decompress(alpaca_pool.read_bytes()).splitlines()[:3000]
    array_file = tmp_path / "pool.json"
    array_file.write_text(orjson.dumps([orjson.loads(line) for line in lines], option=orjson.OPT_INDENT_2).decode())
    same_both_ways(array_file, "chars", 2, tmp_path)


@pytest.mark.parametrize("n", [1, 2, 7, 8, 9, 129, 8193, 65537, 300_001])
def test_the_integer_summary_is_the_float_summary_bit_for_bit(n: int) -> None:
    values = np.random.default_rng(n).integers(0, 50_000, n)
    expected = distribution(values.tolist())  # the float path, as before
    assert distribution(values.astype(np.int32)) == expected
    assert Distribution.of(array("i", values.tolist())).summary == expected


def test_stats_summary_and_comparison_as_before(alpaca_pool: Path, tmp_path: Path) -> None:
    import gzip

    pool_lines = gzip.decompress(alpaca_pool.read_bytes()).splitlines()
    selection = tmp_path / "top.jsonl"
    selection.write_bytes(b"\n".join(sorted(pool_lines, key=len)[-500:]) + b"\n")
    report = stats(selection, ("chars", "words"), compare=alpaca_pool)
    for unit in ("chars", "words"):
        mine = exact_lengths(selection, unit, 1, tmp_path / "a.q.jsonl")[0]
        source = exact_lengths(alpaca_pool, unit, 2, tmp_path / "b.q.jsonl")[0]
        stat = report.units[unit]
        assert stat.corpus.summary == distribution(mine) and stat.compare is not None
        assert stat.compare.summary == distribution(source)
        cutoff = min(mine)
        share = sum(n >= cutoff for n in source) / len(source)
        assert stat.comparison() == {
            "mean_ratio": distribution(mine)["mean"] / distribution(source)["mean"],
            "median_ratio": distribution(mine)["median"] / distribution(source)["median"],
            "source_share_at_or_above_min": share,
        }
    lengths, _ = corpus_lengths(selection, "chars", None, 1, None)
    assert lengths.typecode == "i" and len(lengths) == 500


# --- tokens: a tokenizer.json (or a plain fast folder) counted by `tokenizers` alone, as transformers counts ---


@pytest.fixture(scope="module")
def tiny_tokenizer(alpaca_pool: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    import gzip

    from longsift.tiny import build_tiny_tokenizer

    texts = [orjson.loads(line)["output"] for line in gzip.decompress(alpaca_pool.read_bytes()).splitlines()]
    folder = tmp_path_factory.mktemp("tok") / "tiny"
    tokenizer = build_tiny_tokenizer(texts[:500], vocab_size=512)
    tokenizer.save_pretrained(folder)
    file = folder.parent / "tokenizer.json"
    tokenizer.backend_tokenizer.save(str(file))
    hostile = [
        "",
        " ",
        "<s> x </s>",
        "<|im_start|>user<|im_end|>",
        "<pad><unk>",
        "e\u0301 \U0001f600 \t\r\n",
        "a" * 5000,
    ]
    return folder, file, texts[::7] + hostile


def transformers_counts(source: Path, texts: list[str]) -> tuple[list[int], str]:
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    if source.is_file():
        tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(source))
    else:
        tokenizer = AutoTokenizer.from_pretrained(str(source), use_fast=True, local_files_only=True)
    tokenizer.model_max_length = 1 << 62
    ids = tokenizer(texts, add_special_tokens=False, return_attention_mask=False)["input_ids"]
    return [len(x) for x in ids], type(tokenizer).__name__


@pytest.mark.parametrize("which", ["folder", "file"])
def test_tokens_by_tokenizers_alone_equal_transformers(tiny_tokenizer, which: str) -> None:
    from longsift.lengths.tokens import Tokens

    folder, file, texts = tiny_tokenizer
    source = folder if which == "folder" else file
    unit = Tokens(str(source))
    assert unit._backend is not None  # the fast path was taken
    counts, name = transformers_counts(source, texts)
    assert unit.count(texts) == counts
    assert unit.describe()["tokenizer_class"] == name and unit.describe()["fast"] is True


def test_a_folder_that_transformers_would_change_goes_through_transformers(tiny_tokenizer, tmp_path: Path) -> None:
    import shutil

    from longsift.lengths.tokens import Tokens

    folder, _, texts = tiny_tokenizer
    changed = tmp_path / "changed"
    shutil.copytree(folder, changed)
    config = orjson.loads((changed / "tokenizer_config.json").read_bytes())
    config["bos_token"] = "<not-in-the-vocab>"  # transformers adds it as a special token: counts change
    (changed / "tokenizer_config.json").write_bytes(orjson.dumps(config))
    unit = Tokens(str(changed))
    assert unit._backend is None
    assert unit.count(texts[-7:]) == transformers_counts(changed, texts[-7:])[0]


def test_tokens_load_without_importing_torch(tiny_tokenizer) -> None:
    import subprocess
    import sys

    folder, _, _ = tiny_tokenizer
    code = (
        "import sys; from longsift.lengths import get_unit; print(get_unit('tokens', sys.argv[1]).count(['a b c']));"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'imported'"
    )
    done = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


# --- tokens counted in parallel blocks, a block's texts in one batch call: the counts of transformers ---


def token_plan(tokenizer: Path, k: int | None, lengths_only: bool = False):
    plan = make_plan("longest", k, by="tokens", tokenizer=str(tokenizer), keep_payload=k is not None)
    return dataclasses.replace(plan, lengths_only=lengths_only)


def kept_outputs(source: Path, tmp_path: Path) -> list[str]:
    """The responses the load stage keeps, in row order (the exact path of the load stage, no counting)."""
    from longsift.formats.load import load_all

    records, _ = load_all(source, quarantine=tmp_path / "load.q.jsonl")
    return [record.response for record in records]


@pytest.mark.parametrize("workers", [1, 2])
def test_token_lengths_in_parallel_blocks_equal_transformers_on_the_pool(
    tiny_tokenizer, alpaca_pool: Path, tmp_path: Path, workers: int
) -> None:
    folder, _, _ = tiny_tokenizer
    outcome, _ = run(token_plan(folder, None, lengths_only=True), alpaca_pool, workers=workers,
                     quarantine=tmp_path / "q.jsonl")  # fmt: skip
    assert outcome.workers == workers and outcome.lengths is not None
    assert list(outcome.lengths) == transformers_counts(folder, kept_outputs(alpaca_pool, tmp_path))[0]


@pytest.mark.parametrize("workers", [1, 2])
def test_the_longest_by_tokens_in_parallel_are_those_by_transformers(
    tiny_tokenizer, alpaca_pool: Path, tmp_path: Path, workers: int
) -> None:
    from longsift.select.scan import materialize

    folder, _, _ = tiny_tokenizer
    outcome, name = run(token_plan(folder, 300), alpaca_pool, workers=workers, quarantine=tmp_path / "q.jsonl")
    examples, lengths = materialize(outcome, name)
    kept = kept_outputs(alpaca_pool, tmp_path)  # once: loading the pool inside the comprehension cost 400 s
    counts = transformers_counts(folder, kept)[0]
    best = sorted(sorted(range(len(counts)), key=lambda i: (-counts[i], i))[:300])  # ties: the earlier row
    assert lengths == [counts[i] for i in best]
    assert [e.response for e in examples] == [kept[i] for i in best]


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("bad", [0.15, 0.75])
def test_token_lengths_equal_the_exact_path_on_hostile_lines(tiny_tokenizer, tmp_path: Path, workers: int, bad: float):
    from longsift.formats.rows import Limits

    folder, _, hostile_texts = tiny_tokenizer
    path = hostile_corpus(tmp_path / "hostile.jsonl", n=1500, bad=bad)
    with path.open("ab") as out:  # responses that look like special tokens, odd Unicode, a long one
        out.write(b"".join(orjson.dumps({"instruction": "x", "output": t}) + b"\n" for t in hostile_texts[-7:]))
    limits = Limits(max_record_bytes=600)
    exact = run(token_plan(folder, None), path, workers=workers, quarantine=tmp_path / "e.q.jsonl", limits=limits)
    fast = run(token_plan(folder, None, True), path, workers=workers, quarantine=tmp_path / "f.q.jsonl", limits=limits)
    exact_lengths = [n for _, _, (n, _) in exact[0].heap.items()]
    assert fast[0].lengths is not None and list(fast[0].lengths) == exact_lengths
    assert (tmp_path / "f.q.jsonl").read_bytes() == (tmp_path / "e.q.jsonl").read_bytes()
    from longsift.formats.load import load_all

    records, _ = load_all(path, limits=limits, quarantine=tmp_path / "load.q.jsonl")
    assert exact_lengths == transformers_counts(folder, [r.response for r in records])[0]


def test_select_by_tokens_in_two_processes_imports_no_torch_and_warns_nothing(tiny_tokenizer, alpaca_pool: Path):
    import os
    import subprocess
    import sys

    folder, _, _ = tiny_tokenizer
    code = (
        "import os, sys; from longsift.select import make_plan, run; "
        "plan = make_plan('longest', 10, by='tokens', tokenizer=sys.argv[1]); "
        "get = lambda: run(plan, sys.argv[2], workers=2, quarantine=None)[0]; "
        "a = get(); b = get(); assert a.workers == 2 and a.heap.items() == b.heap.items(); "
        "assert os.environ.get('TOKENIZERS_PARALLELISM') == 'true', 'not restored'; "
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'imported'"
    )
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "true"}
    done = subprocess.run([sys.executable, "-c", code, str(folder), str(alpaca_pool)], capture_output=True,
                          text=True, check=False, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "tokenizers" not in done.stderr  # no fork warning
