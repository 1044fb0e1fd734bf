"""`compare` on a small case computed by hand: identities (row, id, text, duplicates, records the pool lacks),
overlap and Jaccard, unique records, lengths, scores, source mix, mean pairwise cosine distance and the k-center
radius over the pool. The vectors of the hand case are given (2-D unit vectors), so every number is exact."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from longsift import formats
from longsift.analyze.compare import CompareOptions, compare, coverage, mean_pairwise_distance, write_comparison
from longsift.formats.load import load_all

# instruction -> (response, 2-D direction in degrees, AlpaGasus-like score); C is in the pool twice (rows 2, 3)
POOL = [("A", "a0", 0, 5.0), ("B", "b1", 90, 3.5), ("C", "dup", 180, 4.0), ("C", "dup", 180, 4.0),
        ("D", "d4", 270, 2.0), ("E", "e5", 45, 4.5)]  # fmt: skip
DIRECTIONS = {"A": 0, "B": 90, "C": 180, "D": 270, "E": 45, "Z": 90}
R = 1 - math.sqrt(0.5)  # cosine distance of 45 degrees


def alpaca_rows(rows: Sequence[tuple[str, str]], sources: str = "set-1") -> list[dict]:
    return [{"instruction": i, "input": "", "output": o, "sources": [sources]} for i, o in rows]


def vector_of(text: str) -> list[float]:
    """The hand case's embedding: the direction of the record's instruction (record_text starts 'user: X')."""
    degrees = DIRECTIONS[text.split("\n", 1)[0].removeprefix("user: ")]
    return [math.cos(math.radians(degrees)), math.sin(math.radians(degrees))]


def embed(texts: Sequence[str]) -> np.ndarray:
    return np.asarray([vector_of(t) for t in texts], dtype=np.float32).reshape(len(texts), 2)


@pytest.fixture
def case(tmp_path: Path) -> dict[str, Path]:
    pool = tmp_path / "pool.jsonl"
    rows = [{**r, "score": s} for r, (_, _, _, s) in zip(alpaca_rows([(i, o) for i, o, _, _ in POOL]), POOL,
                                                          strict=True)]  # fmt: skip
    rows[5]["sources"] = ["set-2"]
    pool.write_text("".join(json.dumps(r) + "\n" for r in rows))
    examples, _ = load_all(pool)
    by_row = {e.row: e for e in examples}
    s1, s3 = tmp_path / "s1.jsonl", tmp_path / "s3.json"
    formats.write([by_row[r] for r in (0, 1, 2)], s1, "messages")  # carries source and row
    formats.write([by_row[r] for r in (4, 0)], s3, "fastchat")  # identity_<row> ids, nothing else
    s2 = tmp_path / "s2.json"  # text only: B, C twice (the pool's two copies), Z (not in the pool)
    s2.write_text(json.dumps(alpaca_rows([("B", "b1"), ("C", "dup"), ("C", "dup"), ("Z", "z")])))
    return {"pool": pool, "s1": s1, "s2": s2, "s3": s3}


def run(case: dict[str, Path], **options: object) -> dict:
    chosen = CompareOptions(pool=str(case["pool"]), names=["s1", "s2", "s3"], by=["chars", "words"], **options)
    return compare([case["s1"], case["s2"], case["s3"]], chosen, embed=embed)


def test_identities_overlap_and_unique_records_by_hand(case: dict[str, Path]) -> None:
    result = run(case)
    matched = {s["name"]: s["matched"] for s in result["selections"]}
    assert matched["s1"] == {"row": 3, "duplicate": 0}
    # B by its unique text; the two C copies take the pool's rows 2 and 3 (ambiguous text); Z is in no pool row
    assert matched["s2"] == {"text": 1, "ambiguous": 2, "unmatched": 1, "duplicate": 0}
    assert matched["s3"] == {"id": 2, "duplicate": 0}
    # keys: s1 {0, 1, 2}; s2 {1, 2, 3, Z}; s3 {4, 0}
    assert result["overlap"]["counts"] == [[3, 2, 1], [2, 4, 0], [1, 0, 2]]
    jaccard = result["overlap"]["jaccard"]
    assert jaccard[0][1] == pytest.approx(2 / 5) and jaccard[1][0] == pytest.approx(2 / 5)
    assert jaccard[0][2] == pytest.approx(1 / 4) and jaccard[1][2] == 0.0
    assert [jaccard[i][i] for i in range(3)] == [1.0, 1.0, 1.0]
    unique = result["unique"]
    assert (unique["s1"]["n"], unique["s2"]["n"], unique["s3"]["n"]) == (0, 2, 1)
    assert unique["s2"]["keys"][0] == 3 and isinstance(unique["s2"]["keys"][1], str)  # row 3, then Z
    assert unique["s3"]["keys"] == [4] and unique["s3"]["examples"][0]["pool_row"] == 4


def test_lengths_scores_and_mix_by_hand(case: dict[str, Path]) -> None:
    result = run(case)
    chars = result["lengths"]["chars"]
    assert chars["selections"]["s1"]["response"]["mean"] == pytest.approx(7 / 3)  # a0, b1, dup
    assert chars["pool"]["response"]["n"] == 6 and chars["pool"]["response"]["max"] == 3
    assert sum(chars["histogram"]["counts"]["s2"]) == 4
    assert result["lengths"]["words"]["selections"]["s3"]["response"]["mean"] == 1.0
    score = result["scores"]["score"]
    assert score["pool"]["mean"] == pytest.approx(23.0 / 6) and score["pool"]["max"] == 5.0
    # s3 (FastChat) and s2 (text) keep no score of their own: their pool records' scores count, Z has none
    assert score["s3"]["mean"] == pytest.approx(3.5) and score["s3"]["carried_by"] == 2
    assert (score["s2"]["carried_by"], score["s2"]["of"], score["s2"]["mean"]) == (3, 4, pytest.approx(11.5 / 3))
    assert score["s1"]["values"] == {"3.5": 1, "4": 1, "5": 1}
    mix = result["mix"]
    assert mix["pool"]["set-1"] == {"n": 5, "share": pytest.approx(5 / 6)}
    assert mix["s3"]["set-1"]["n"] == 2  # from the pool records: FastChat kept no `sources`


def test_diversity_by_hand(case: dict[str, Path]) -> None:
    diversity = run(case)["diversity"]
    # s1 = A(0), B(90), C(180): distances 1, 2, 1
    assert diversity["s1"]["mean_pairwise_distance"] == pytest.approx(4 / 3)
    # nearest distances of the pool's A, B, C, C, D, E to s1: 0, 0, 0, 0, 1 (D: 90 degrees from A and C), R (E)
    assert diversity["s1"]["radius"] == pytest.approx(1.0)
    assert diversity["s1"]["mean_nearest"] == pytest.approx((1 + R) / 6)
    # s2 = B, C (row 2), C (row 3), Z (= B's direction): two distinct pool rows with one text count twice
    assert diversity["s2"]["n"] == 4
    assert diversity["s2"]["mean_pairwise_distance"] == pytest.approx(4 / 6)
    assert diversity["s2"]["mean_nearest"] == pytest.approx((1 + 1 + R) / 6)
    assert diversity["s3"]["mean_pairwise_distance"] == pytest.approx(1.0)
    assert diversity["s3"]["mean_nearest"] == pytest.approx((1 + 1 + 1 + R) / 6)
    assert diversity["s3"]["radius_euclidean"] == pytest.approx(math.sqrt(2))


def test_a_record_selected_twice_is_one_record(case: dict[str, Path], tmp_path: Path) -> None:
    twice = tmp_path / "twice.json"
    twice.write_text(json.dumps(alpaca_rows([("A", "a0"), ("B", "b1"), ("B", "b1")])))
    chosen = CompareOptions(pool=str(case["pool"]), by=["chars"])
    result = compare([twice, case["s1"]], chosen, embed=embed)
    row = result["selections"][0]
    # B is once in the pool: its second copy is unmatched, a record of its own, not B again
    assert row["matched"] == {"text": 2, "unmatched": 1, "duplicate": 0} and row["distinct"] == 3
    assert result["overlap"]["counts"][0][1] == 2


def test_measures_match_brute_force() -> None:
    rng = np.random.default_rng(0)
    pool = rng.normal(size=(300, 8)).astype(np.float32)
    pool /= np.linalg.norm(pool, axis=1, keepdims=True)
    chosen = pool[rng.choice(300, 17, replace=False)]
    pairs = [1 - float(chosen[i] @ chosen[j]) for i in range(17) for j in range(i + 1, 17)]
    assert mean_pairwise_distance(chosen) == pytest.approx(sum(pairs) / len(pairs), abs=1e-6)
    nearest = [min(1 - float(p @ c) for c in chosen) for p in pool]
    measured = coverage(pool, chosen)
    assert measured["radius"] == pytest.approx(max(nearest), abs=1e-5)
    assert measured["mean_nearest"] == pytest.approx(sum(nearest) / len(nearest), abs=1e-5)
    assert mean_pairwise_distance(chosen[:1]) is None


def test_writes_json_page_and_manifest(case: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    chosen = CompareOptions(pool=str(case["pool"]), by=["chars"], embeddings=False)
    write_comparison([case["s1"], case["s2"]], chosen, out)
    result = json.loads((out / "compare.json").read_text())
    assert result["diversity"] is None and result["overlap"]["counts"] == [[3, 2], [2, 4]]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["command"] == "compare" and set(manifest["files"]) == {"compare.json", "compare.html"}
    assert [i["role"] for i in manifest["inputs"]] == ["pool", "selection:s1", "selection:s2"]
    page = (out / "compare.html").read_text()
    assert 'id="compare-overlap"' in page and "<script" not in page


def test_cli_errors_are_one_line(case: dict[str, Path], tmp_path: Path, cli) -> None:
    bad = cli("compare", str(case["s1"]), str(case["s2"]), "--pool", str(case["pool"]), "--name", "x",
              "-o", str(tmp_path / "o"), check=False)  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "--name given 1 times" in bad.stderr
    onto = cli("compare", str(case["s1"]), "--pool", str(case["pool"]), "-o", str(case["s1"]), check=False)
    assert onto.returncode == 2 and "error:" in onto.stderr


def test_a_text_match_takes_a_copy_not_held_by_id(case: dict[str, Path], tmp_path: Path) -> None:
    pool, _ = load_all(case["pool"])
    mixed = tmp_path / "mixed.json"  # row 2 by its FastChat id, then the same text again with no id
    formats.write([pool[2]], tmp_path / "by-id.json", "fastchat")
    rows = json.loads((tmp_path / "by-id.json").read_text()) + [
        {"id": "other", "conversations": [{"from": "human", "value": "C"}, {"from": "gpt", "value": "dup"}]}
    ]
    mixed.write_text(json.dumps(rows))
    result = compare([mixed], CompareOptions(pool=str(case["pool"]), by=["chars"], embeddings=False))
    # the id claims row 2; the text copy takes row 3, the pool's other copy, not row 2 again
    assert result["selections"][0]["matched"] == {"id": 1, "ambiguous": 1, "duplicate": 0}
    assert result["unique"]["mixed"]["keys"] == [2, 3]
