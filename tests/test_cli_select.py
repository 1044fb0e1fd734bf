"""`longsift select` and `longsift stats` as a user runs them, on the shared Alpaca pool."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from longsift.formats import rows
from longsift.formats.alpaca import PREAMBLE, PREAMBLE_WITH_INPUT
from longsift.lengths import DEFAULT_UNIT, UNITS
from longsift.lengths.nltk_words import PUNKT_PACKAGE, PUNKT_TAB


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
    assert manifest["summary"]["unit"]["punkt"] in (PUNKT_TAB, PUNKT_PACKAGE)  # NLTK's English model, either way
    assert manifest["summary"]["cutoff_length"] == 137

    check_stats(cli, out, alpaca_pool, tmp_path / "out" / "stats", "words")


def check_stats(cli, selection: Path, pool: Path, stats_dir: Path, unit: str) -> dict:
    result = cli("stats", str(selection), "--compare", str(pool), "--by", unit, "-o", str(stats_dir), "--json")
    data = json.loads(result.stdout)["units"][unit]
    assert data["corpus"]["n"] == 1000 and data["compare"]["n"] == 18659
    assert set(data["corpus"]) == {"n", "mean", "std", "min", "max", "p10", "p25", "median", "p75", "p90", "p95", "p99"}
    assert data["comparison"]["mean_ratio"] > 3
    assert (stats_dir / f"histogram_{unit}.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((stats_dir / "stats.json").read_text())["units"][unit]["corpus"]["n"] == 1000
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


def test_every_length_command_takes_one_by_over_the_one_registry(cli, tmp_path: Path) -> None:
    """select, stats, analyze and report: one `--by` each, the same help and default, the registry's units and
    errors; the recipe steps take `by` too."""
    import typer

    from longsift.cli import build
    from longsift.lengths import HELP
    from longsift.options import recipe_fields
    from longsift.pipeline.steps import step_model

    commands = typer.main.get_command(build()).commands  # type: ignore[attr-defined]
    for name in ("select", "stats", "analyze", "report"):
        (by,) = [param for param in commands[name].params if "--by" in param.opts]
        assert by.opts == ["--by"] and by.help.startswith(HELP.split(" Default")[0]), name
        assert by.default in (None, DEFAULT_UNIT, [DEFAULT_UNIT]), name  # None: the preset's, or the selection's
    assert all("by" in recipe_fields(step_model(uses)) for uses in ("select", "analyze"))  # type: ignore[arg-type]
    source = tmp_path / "pool.jsonl"
    source.write_text("".join(orjson.dumps({"instruction": "i", "output": "o " * n}).decode() + "\n" for n in (1, 3)))
    known = ", ".join(UNITS.names())
    for args in (["select", str(source), "-o", str(tmp_path / "x.json"), "--k", "1"], ["stats", str(source)],
                 ["analyze", "--selection", str(source)]):  # fmt: skip
        result = cli(*args, "--by", "bytes", check=False)
        assert result.returncode == 2 and "unknown length unit 'bytes'" in result.stderr and known in result.stderr
        result = cli(*args, "--tokenizer", str(tmp_path / "tokenizer.json"), check=False)  # by default: chars
        assert result.returncode == 2 and "counts only --by tokens" in result.stderr, args
    data = json.loads(cli("stats", str(source), "--json").stdout)
    assert list(data["units"]) == [DEFAULT_UNIT] and data["units"][DEFAULT_UNIT]["corpus"]["max"] == 6
    profile = json.loads(cli("analyze", "--selection", str(source)).stdout)["selection"]
    assert profile["unit"]["name"] == DEFAULT_UNIT and profile["subsets"]["pool"]["response"]["max"] == 6


def test_an_empty_length_range_is_one_line_in_the_new_names(cli, alpaca_pool: Path, tmp_path: Path) -> None:
    result = cli("select", str(alpaca_pool), "-o", str(tmp_path / "x.json"), "--min-response-length", "10",
                 "--max-response-length", "5", check=False)  # fmt: skip
    assert result.returncode == 2 and not (tmp_path / "x.json").exists()
    assert result.stderr.strip() == "error: --min-response-length 10 is above --max-response-length 5"
