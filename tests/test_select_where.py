"""--where expressions (parsed, never evaluated as Python) and --chain filter compositions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from longsift.errors import ConfigError
from longsift.records import Example, Message
from longsift.select import select
from longsift.select.where import compile_where, is_expression


def record(score: object = None, **metadata: object) -> Example:
    meta = dict(metadata)
    if score is not None:
        meta["score"] = score
    return Example("x", (Message("user", "q"), Message("assistant", "a")), "dolly", 0, meta)


@pytest.mark.parametrize(
    ("text", "example", "length", "expected"),
    [
        ("llm_score >= 4.5", record(4.5), None, True),
        ("llm-score >= 4.5", record(4.4), None, False),
        ("score >= 4.5", record(), None, False),  # no score: never passes an order comparison
        ("score == null", record(), None, True),
        ("score > 3 and length < 10", record(4), 9, True),
        ("score > 3 and length < 10", record(4), 10, False),
        ("not (score > 3 or length < 10)", record(2), 20, True),
        ("source == 'dolly' and ifd < 0.9", record(ifd=0.5), None, True),
        ('source != "dolly"', record(), None, False),
        ("meta.a.b >= 2", record(meta={"a": {"b": 3}}), None, True),
        ("score > 'a'", record(4), None, False),  # across types: false, not an error
        ("score >= -1e3", record(score=-5), None, True),
        ("flag == true", record(flag=True), None, True),
    ],
)
def test_expressions(text: str, example: Example, length: int | None, expected: bool) -> None:
    assert compile_where(text)(example, length) is expected


@pytest.mark.parametrize(
    "text",
    ["", "score >=", "score 4", "(score > 1", "score > 1 and", "__import__('os') == 1", "score > 1 ; x", "a = 1"],
)
def test_bad_expressions_are_one_line_errors(text: str) -> None:
    with pytest.raises(ConfigError, match="--where"):
        compile_where(text)


def test_expressions_and_method_names_in_a_chain() -> None:
    assert is_expression("llm-score >= 4") and is_expression("length>3")
    assert not is_expression("dedup-minhash") and not is_expression("longest")
    assert compile_where("length > 3").uses_length and not compile_where("score > 3").uses_length


@pytest.fixture
def scored_pool(tmp_path: Path) -> Path:
    rows = [{"instruction": f"task {i}", "input": "", "output": "word " * (i + 1), "score": [3, 4, 5, 4.5][i % 4]}
            for i in range(40)]  # fmt: skip
    rows.append({"instruction": "task 0", "input": "", "output": "word ", "score": 3})  # an exact duplicate of row 0
    rows.append({"instruction": "unscored", "input": "", "output": "word " * 100})
    path = tmp_path / "pool.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_where_then_longest_equals_filtering_by_hand(scored_pool: Path) -> None:
    selection = select(scored_pool, method="longest", k=5, by="words", where="llm_score >= 4.5")
    eligible = [i for i in range(40) if [3, 4, 5, 4.5][i % 4] >= 4.5]
    assert [e.row for e in selection.examples] == sorted(eligible, key=lambda i: -i)[:5][::-1]
    assert selection.summary.dropped["filtered by where llm_score >= 4.5"] == 42 - len(eligible)


def test_a_recipe_chain(scored_pool: Path) -> None:
    chained = select(scored_pool, chain="dedup-minhash -> llm-score >= 4 -> longest", k=3, by="words")
    assert [e.row for e in chained.examples] == [37, 38, 39]
    assert chained.summary.options["chain"] == ["dedup-minhash", "llm-score >= 4", "longest"]
    assert chained.summary.dropped["filtered by dedup-minhash"] >= 1
    with pytest.raises(ConfigError, match="last step must be a method"):
        select(scored_pool, chain="longest -> score > 1")
    with pytest.raises(ConfigError, match="not a filter"):
        select(scored_pool, chain="longest -> random")
    with pytest.raises(ConfigError, match="--method is"):
        select(scored_pool, chain="dedup-minhash -> longest", method="random")


def test_where_on_the_command_line(cli, scored_pool: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    cli("select", str(scored_pool), "-o", str(out), "--k", "2", "--by", "words", "--where", "score >= 5")
    assert len(out.read_text().splitlines()) == 2
    bad = cli("select", str(scored_pool), "-o", str(tmp_path / "x.jsonl"), "--where", "score >>= 5", check=False)
    assert bad.returncode == 2 and "error: --where" in bad.stderr and "Traceback" not in bad.stderr


def test_a_chain_in_a_recipe_select_step() -> None:
    from longsift.pipeline.steps import SelectStep
    from longsift.select import chain_of
    from longsift.select.options import SelectOptions

    chain = "dedup-minhash -> score > 4 -> kcenter"
    step = SelectStep.from_recipe({"name": "a", "source": "x", "k": 3, "chain": chain}, "recipe")
    assert chain_of(step.narrowed(SelectOptions)) == (["dedup-minhash", "score > 4"], "kcenter")
