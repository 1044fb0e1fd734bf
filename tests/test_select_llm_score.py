"""Selection by LLM score: `llm-score` (AlpaGasus: seeded uniform sample above a threshold) and `top-score`."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from longsift import formats
from longsift.errors import ConfigError
from longsift.llm.server import LocalChatServer, ServedRequest
from longsift.records import Example
from longsift.select import select


def scored(scores: list[float | None | str]) -> list[Example]:
    """One record per score; None: never scored; "failed": scoring failed (no score, a status)."""
    records = []
    for row, value in enumerate(scores):
        example = Example.from_alpaca(f"instruction {row}", "", f"answer {row}", id=f"r{row}", row=row)
        if value == "failed":
            example = example.with_metadata(score_status="failed", score_error="no score in the reply")
        elif value is not None:
            example = example.with_metadata(score=value, score_status="scored")
        records.append(example)
    return records


SCORES: list[float | None | str] = [5.0, 4.5, 3.0, None, 4.0, 5.0, "failed", 4.5, 0.0, 4.9, 4.5, 2.0]
ELIGIBLE = {f"r{i}" for i, s in enumerate(SCORES) if isinstance(s, float) and s >= 4.5}


def ids(selection) -> list[str]:
    return [e.id for e in selection.examples]


def test_llm_score_samples_only_at_or_above_the_threshold() -> None:
    chosen = select(scored(SCORES), "llm-score", 3, seed=7, workers=1)
    assert len(chosen.examples) == 3 and set(ids(chosen)) <= ELIGIBLE
    assert [e.row for e in chosen.examples] == sorted(e.row for e in chosen.examples)  # source order
    assert chosen.summary.dropped == {"no LLM score": 2, "LLM score below 4.5": 4}
    assert chosen.summary.method["threshold"] == 4.5 and chosen.summary.method["seed"] == 7
    assert set(ids(select(scored(SCORES), "llm-score", None, workers=1))) == ELIGIBLE  # no k: every eligible one
    assert set(ids(select(scored(SCORES), "llm-score", 100, workers=1))) == ELIGIBLE  # min(k, n)


def test_llm_score_threshold_and_seed() -> None:
    strict = select(scored(SCORES), "llm-score", None, threshold=5.0, workers=1)
    assert ids(strict) == ["r0", "r5"]
    loose = select(scored(SCORES), "llm-score", None, threshold=0.0, workers=1)
    assert len(loose.examples) == 10  # 0.0 is a score, not a missing one
    samples = {tuple(ids(select(scored(SCORES), "llm-score", 2, seed=seed, workers=1))) for seed in range(20)}
    assert len(samples) > 3  # the seed matters
    again = {tuple(ids(select(scored(SCORES), "llm-score", 2, seed=seed, workers=1))) for seed in range(20)}
    assert again == samples  # and the same seed gives the same sample


def test_llm_score_is_random_k_over_the_eligible_records() -> None:
    records = scored(SCORES)
    eligible = [r for r in records if r.id in ELIGIBLE]
    for seed in range(5):
        assert ids(select(records, "llm-score", 3, seed=seed, workers=1)) == ids(
            select(eligible, "random", 3, seed=seed, workers=1)
        )


@settings(max_examples=25, deadline=None)
@given(st.permutations(list(range(len(SCORES)))), st.integers(0, 2**31))
def test_llm_score_ignores_input_order(order: list[int], seed: int) -> None:
    records = scored(SCORES)
    shuffled = [records[i] for i in order]
    assert set(ids(select(records, "llm-score", 3, seed=seed, workers=1))) == set(
        ids(select(shuffled, "llm-score", 3, seed=seed, workers=1))
    )


def test_llm_score_sample_is_uniform() -> None:
    records = scored([4.5] * 8 + [1.0] * 8)
    picks = Counter(i for seed in range(800) for i in ids(select(records, "llm-score", 2, seed=seed, workers=1)))
    assert set(picks) == {f"r{i}" for i in range(8)}
    expected = 800 * 2 / 8
    chi2 = sum((n - expected) ** 2 / expected for n in picks.values())
    assert chi2 < 24.3  # chi-square, 7 degrees of freedom, p = 0.001


def test_top_score_ties_go_to_the_earlier_row() -> None:
    records = scored([5.0, 4.0, 5.0, None, 5.0, "failed", 4.9])
    assert ids(select(records, "top-score", 2, workers=1)) == ["r0", "r2"]
    assert ids(select(records, "top-score", 4, workers=1)) == ["r0", "r2", "r4", "r6"]
    shuffled = list(reversed(records))
    assert set(ids(select(shuffled, "top-score", 4, workers=1))) == {"r0", "r2", "r4", "r6"}
    assert select(records, "top-score", None, workers=1).summary.dropped == {"no LLM score": 2}


def test_threshold_belongs_to_llm_score_only() -> None:
    with pytest.raises(ConfigError, match="threshold"):
        select(scored(SCORES), "longest", 2, threshold=4.5, workers=1)
    with pytest.raises(ConfigError, match="threshold"):
        select(scored(SCORES), "top-score", 2, threshold=4.5, workers=1)


def test_score_then_select_from_the_cli(cli, alpaca_pool: Path, tmp_path: Path) -> None:
    """`longsift score` against the real local server, then `longsift select --method llm-score` on its output."""
    source = tmp_path / "pool.jsonl"
    formats.write(select(str(alpaca_pool), "random", 60, seed=1).examples, source, "messages")
    scored_path = tmp_path / "scored.jsonl"

    def respond(request: ServedRequest) -> str:
        return random.Random(request.prompt).choice(["5\nGreat.", "4.5\nGood.", "3\nMeh.", "no idea"])

    with LocalChatServer(respond) as server:
        cli("score", str(source), "-o", str(scored_path), "--model", "m", "--base-url", server.base_url,
            "--no-progress")  # fmt: skip
    rows = [orjson.loads(line) for line in scored_path.read_bytes().splitlines()]
    eligible = {r["id"] for r in rows if r["metadata"].get("score", 0) >= 4.5}
    unscored = sum("score" not in r["metadata"] for r in rows)
    assert 10 < len(eligible) < 50 and unscored > 0

    out = tmp_path / "alpagasus.jsonl"
    args = ["select", str(scored_path), "-o", str(out), "--method", "llm-score", "--threshold", "4.5", "--k", "10"]
    first = cli(*args, "--seed", "3")
    chosen = [orjson.loads(line)["id"] for line in out.read_bytes().splitlines()]
    assert len(chosen) == 10 and set(chosen) <= eligible
    cli(*args, "--seed", "3")
    assert [orjson.loads(line)["id"] for line in out.read_bytes().splitlines()] == chosen
    assert f"no LLM score {unscored}" in first.stderr

    top = tmp_path / "top.jsonl"
    cli("select", str(scored_path), "-o", str(top), "--method", "top-score", "--k", "5")
    top_rows = [orjson.loads(line) for line in top.read_bytes().splitlines()]
    assert [r["metadata"]["score"] for r in top_rows] == [5.0] * 5
