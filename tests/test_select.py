"""Selection invariants (hypothesis), the parallel JSON-lines scan against the plain record stream, options."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from longsift.formats.load import Quarantine, load_all
from longsift.records import Example
from longsift.select import make_plan, select
from longsift.select.base import TopK
from longsift.select.scan import materialize, scan_jsonl


def corpus(outputs: list[str]) -> list[Example]:
    return [Example.from_alpaca(f"task {i}", "", out, id=str(i), row=i) for i, out in enumerate(outputs)]


outputs_strategy = st.lists(st.text(alphabet="ab ", max_size=12).filter(str.strip), max_size=40)


@settings(max_examples=60, deadline=None)
@given(outputs_strategy, st.integers(0, 45), st.randoms(use_true_random=False))
def test_longest_is_a_stable_top_k_whatever_the_order(outputs: list[str], k: int, rng: random.Random) -> None:
    records = corpus(outputs)
    expected = sorted(sorted(range(len(records)), key=lambda i: (-len(outputs[i]), i))[:k])
    shuffled = records[:]
    rng.shuffle(shuffled)
    for order in (records, shuffled):
        chosen = select(order, k=k, by="chars", workers=1)
        assert [e.row for e in chosen.examples] == expected  # min(k, n) rows, ties to the earlier row, row order
        assert len(chosen.examples) == min(k, len(records))


@settings(max_examples=40, deadline=None)
@given(outputs_strategy, st.integers(1, 10), st.integers(0, 2**31), st.randoms(use_true_random=False))
def test_random_is_seeded_and_order_free(outputs: list[str], k: int, seed: int, rng: random.Random) -> None:
    records = corpus(outputs)
    first = [e.row for e in select(records, "random", k, seed=seed, workers=1).examples]
    again = [e.row for e in select(records, "random", k, seed=seed, workers=1).examples]
    shuffled = records[:]
    rng.shuffle(shuffled)
    assert first == again == [e.row for e in select(shuffled, "random", k, seed=seed, workers=1).examples]
    assert len(first) == min(k, len(records))


def test_random_seeds_differ_and_sample_evenly(alpaca_pool: Path) -> None:
    one = {e.row for e in select(alpaca_pool, "random", 500, seed=1).examples}
    two = {e.row for e in select(alpaca_pool, "random", 500, seed=2).examples}
    assert len(one) == len(two) == 500 and len(one & two) < 100  # ~13 expected by chance
    assert 0.35 < sum(row < 9229 for row in one) / 500 < 0.65  # the pool's first 9,229 rows are ~49% of it


def test_topk_keeps_o_k_entries_and_breaks_ties_by_row() -> None:
    heap: TopK[str] = TopK(3)
    for row, key in enumerate([5, 7, 7, 1, 7, 9, 5]):
        heap.push(key, row, f"r{row}")
    assert len(heap) == 3
    assert [(key, row) for key, row, _ in heap.items()] == [(7, 1), (7, 2), (9, 5)]
    assert heap.threshold() == 7


def write_jsonl(path: Path, lines: list[bytes]) -> Path:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as handle:
        handle.write(b"\n".join(lines) + b"\n")
    return path


def messy_lines(n: int = 400) -> list[bytes]:
    """Valid Alpaca rows with every kind of bad line spread through them, and blank lines."""
    rng = random.Random(7)
    lines = []
    for i in range(n):
        record = {"instruction": f"do {i}", "input": "" if i % 3 else f"ctx {i}", "output": "w " * rng.randint(1, 60)}
        lines.append(orjson.dumps(record))
        if i % 37 == 5:
            lines.append(b'{"instruction": "broken", ')
        if i % 53 == 7:
            lines.append(orjson.dumps({"instruction": "x", "output": ""}))
        if i % 61 == 11:
            lines.append(b"")
        if i % 71 == 13:
            lines.append(b'{"instruction": "bad \xff utf8", "output": "y"}')
        if i % 89 == 17:
            lines.append(orjson.dumps({"instruction": "x", "output": 3}))
    return lines


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])
@pytest.mark.parametrize("by", ["words", "nltk"])
def test_parallel_blocks_match_the_record_stream(tmp_path: Path, suffix: str, by: str) -> None:
    path = write_jsonl(tmp_path / f"messy{suffix}", messy_lines())
    plan = make_plan("longest", 50, by=by)
    outcome = scan_jsonl(path, plan, quarantine=Quarantine(tmp_path / "q.jsonl"), workers=2, max_record_bytes=1 << 20,
                         block_bytes=2048)  # fmt: skip
    examples, lengths = materialize(outcome, str(path))
    records, report = load_all(path)
    from longsift.lengths import get_unit

    exact = get_unit(by).count([r.response for r in records])
    expected = sorted(sorted(range(len(records)), key=lambda i: (-exact[i], records[i].row))[:50])
    assert [e.row for e in examples] == [records[i].row for i in expected]
    assert examples == [records[i] for i in expected]
    assert lengths == [exact[i] for i in expected]
    got = outcome.report
    assert (got.read, got.kept, got.quarantined) == (report.read, report.kept, report.quarantined)
    assert got.read == got.kept + got.quarantined and got.quarantined > 10
    written = [orjson.loads(line) for line in (tmp_path / "q.jsonl").read_bytes().splitlines()]
    assert [(r["row"], r["line"], r["reason"]) for r in written] == [
        (r.row, r.line, r.reason) for r in report.rejections
    ]


def test_duplicate_ids_and_dedup_across_blocks(tmp_path: Path) -> None:
    lines = [orjson.dumps({"id": f"x{i % 150}", "instruction": "i", "output": f"out {i} " + "w " * (i % 40)})
             for i in range(200)]  # fmt: skip
    lines += [orjson.dumps({"instruction": "same", "output": "dup " * 30})] * 3
    path = write_jsonl(tmp_path / "ids.jsonl", lines)
    plan = make_plan("longest", 20, by="words", dedup=True)
    outcome = scan_jsonl(path, plan, quarantine=Quarantine(), workers=2, max_record_bytes=1 << 20, block_bytes=1024)
    examples, _ = materialize(outcome, str(path))
    records, report = load_all(path)
    assert outcome.report.quarantined == report.quarantined == 50  # ids x0..x49 come back at rows 150..199
    assert outcome.dropped["duplicate"] == 2
    survivors = [r for r in records if r.row != 201 and r.row != 202]
    expected = sorted(sorted(survivors, key=lambda r: (-len(r.response.split()), r.row))[:20], key=lambda r: r.row)
    assert [e.row for e in examples] == [r.row for r in expected]


def test_filters_length_range_and_empty_input(alpaca_pool: Path) -> None:
    records, _ = load_all(alpaca_pool)
    chosen = select(alpaca_pool, k=None, by="words", min_response_length=20, max_response_length=30,
                    drop_empty_input=True)  # fmt: skip
    expected = [r.row for r in records if 20 <= len(r.response.split()) <= 30 and r.input.strip()]
    assert [e.row for e in chosen.examples] == expected
    assert chosen.summary.dropped["empty input"] == sum(1 for r in records if not r.input.strip())
    nltk_range = select(alpaca_pool, k=5, by="nltk", min_response_length=50, max_response_length=60)
    assert all(50 <= n <= 60 for n in nltk_range.lengths) and len(nltk_range.examples) == 5


def test_select_from_a_json_array_and_summary(tmp_path: Path, data_dir: Path) -> None:
    lima = data_dir / "lima" / "fastchat_lima_1k.json"
    chosen = select(lima, k=10, by="chars")
    records, _ = load_all(lima)
    assert [e.row for e in chosen.examples] == sorted(
        sorted((r.row for r in records), key=lambda row: (-len(records[row].response), row))[:10]
    )
    summary = chosen.summary
    assert (summary.rows_read, summary.rows_kept, summary.selected) == (1000, 1000, 10)
    assert summary.cutoff_length == min(chosen.lengths)


def test_an_escaped_id_key_is_still_checked_for_duplicates(tmp_path: Path) -> None:
    lines = [b'{"\\u0069d": "a", "instruction": "i", "input": "", "output": "one two"}'] * 2
    path = write_jsonl(tmp_path / "escaped.jsonl", lines)
    chosen = select(path, k=5, by="words")
    assert (chosen.summary.rows_kept, chosen.summary.rows_quarantined) == (1, 1)


def messy_array(n: int = 600) -> bytes:
    """A JSON array (json.dump indent=4 layout) with well-delimited bad elements: NaN, bad UTF-8, lone
    surrogates, non-objects, deep nesting, bad fields, ids and their duplicates."""
    rng = random.Random(11)
    bad = [b'{"instruction": "x", "output": "y", "score": NaN}', b'{"instruction": "bad \xff", "output": "y"}',
           b'{"instruction": "x", "output": "\\ud800"}', b"[1, 2]", b'"text"', b"null",
           b'{"instruction": "x", "output": "y", "m": ' + b"[" * 120 + b"]" * 120 + b"}",
           b'{"instruction": "x", "output": ""}', b'{"instruction": 3, "output": "y"}',
           b'{"id": "same", "instruction": "x", "output": "an id, twice twice twice"}']  # fmt: skip
    elements = []
    for i in range(n):
        record = {"instruction": f"do {i}", "input": "", "output": "w " * rng.randint(1, 60)}
        elements.append(orjson.dumps(record, option=orjson.OPT_INDENT_2).replace(b"\n", b"\n    "))
        if rng.random() < 0.1:
            elements.append(rng.choice(bad))
    return b"[\n    " + b",\n    ".join(elements) + b"\n]"


@pytest.mark.parametrize("suffix", [".json", ".json.gz"])
@pytest.mark.parametrize("workers", [1, 2])
def test_json_array_blocks_match_the_record_stream(tmp_path: Path, suffix: str, workers: int) -> None:
    from longsift.formats.rows import Opened
    from longsift.select.scan import scan_text

    path = tmp_path / f"messy{suffix}"
    data = messy_array()
    path.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else data)
    plan = make_plan("longest", 40, by="words")
    with Opened(path) as opened:
        outcome = scan_text(opened, "json", plan, quarantine=Quarantine(tmp_path / "q.jsonl"), workers=workers,
                            block_bytes=2048)  # fmt: skip
    examples, _ = materialize(outcome, str(path))
    records, report = load_all(path, quarantine=tmp_path / "exact.jsonl")
    from longsift.lengths import get_unit

    exact = get_unit("words").count([r.response for r in records])
    expected = sorted(sorted(range(len(records)), key=lambda i: (-exact[i], records[i].row))[:40])
    assert examples == [records[i] for i in expected]
    got = outcome.report
    assert (got.read, got.kept, got.quarantined) == (report.read, report.kept, report.quarantined)
    assert got.quarantined > 30 and any("duplicate id" in r.reason for r in report.rejections)
    assert (tmp_path / "q.jsonl").read_bytes() == (tmp_path / "exact.jsonl").read_bytes()
    lines = data.split(b"\n")
    for rejection in report.rejections:  # each line is where its element starts
        assert lines[rejection.line - 1].strip()[:1] in (b"{", b"[", b'"', b"n")
