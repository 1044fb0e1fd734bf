"""Selector benchmark: every number measured side by side in this one run.

1. `ifd` rows/s: batched by length on the model runner (longsift.select.ifd.ifd_scores) vs one record at a time,
   two forward passes per record with -100 labels (the loop of Cherry LLM's data_analysis.py --mod cherry), on the
   same tiny Llama built from the public Alpaca pool; the scores of both are compared too. Target: >= 5x.
2. `kcenter` (greedy farthest point, k centers) and `diverse` (DEITA's walk) time and peak RSS on n unit vectors of
   384 dimensions (all-MiniLM-L6-v2's width; clustered random vectors: embedding 50k records on a CPU takes longer
   than the selection, and the embedding cache makes it a one-off), each in a fresh process: the peak next to the
   embeddings' own size shows memory bounded by the embeddings (an n x n float32 matrix would be n*n*4 bytes).
3. `dedup-minhash` rows/s on `--rows` records: the public pool's records, cycled, each copy with a few words
   changed (so the LSH finds near duplicates as well as distinct records).
The machine may be shared: read each ratio with the load average printed beside it.
Usage: python bench/selectors.py [--ifd-rows 200] [--vectors 50000] [--k 1000] [--rows 500000]
"""

from __future__ import annotations

import os
import sys

# This file is named selectors.py: keep its folder off sys.path so `import selectors` finds the standard library.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

import argparse  # noqa: E402
import itertools  # noqa: E402
import multiprocessing  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
POOL = (
    Path(os.environ.get("LONGSIFT_DATA", REPO.parent / "shared" / "data"))
    / "alpaca_subsets"
    / "alpaca_public_pool.jsonl.gz"
)


def load_pool(rows: int | None = None) -> list:
    from longsift.formats.load import load

    return list(itertools.islice(load(POOL), rows))


def cherry_loop(model, tokenizer, examples, max_length: int) -> list[float | None]:
    """Cherry LLM's loop: per record, the answer alone and with the instruction, each in its own forward pass with
    -100 labels before the answer, then (as get_perplexity_and_embedding_part_text does) each token's loss in a
    Python loop; IFD from the answer tokens' mean losses, as data_by_IFD.py."""
    import torch

    from longsift.select.ifd import texts_of

    log_softmax, nll = torch.nn.LogSoftmax(dim=-1), torch.nn.NLLLoss(reduction="none")
    out: list[float | None] = []
    for example in examples:
        texts = texts_of(example)
        question = len(tokenizer.encode(texts.instruction, truncation=True, max_length=max_length))
        means = []
        for text, limit in ((texts.alone, max_length - question - 2), (texts.whole, max_length)):
            ids = tokenizer.encode(text, return_tensors="pt", truncation=True, max_length=limit).to(model.device)
            start = len(tokenizer.encode(text[: text.rfind(texts.answer)]))
            labels = ids.clone()
            labels[0, :start] = -100
            with torch.no_grad():
                logits = model(ids, labels=labels).logits
            losses = [nll(log_softmax(logits[0, i - 1]).unsqueeze(0), ids[0, i].unsqueeze(0)).item()
                      for i in range(1, ids.shape[1])]  # fmt: skip
            answer = losses[start - 1 :]
            means.append(sum(answer) / len(answer) if answer else 0.0)
        out.append(means[1] / means[0] if means[0] > 0 else None)
    return out


def bench_ifd(rows: int, max_length: int = 512) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from longsift.models.hf import TransformersRunner
    from longsift.select.ifd import ifd_scores
    from longsift.tiny import build_tiny_model, example_texts

    examples = load_pool(rows)
    folder = Path(tempfile.mkdtemp(prefix="bench-ifd-"))
    model_path = build_tiny_model(folder / "model", example_texts(load_pool(2000)))
    runner = TransformersRunner(str(model_path)).load()
    model = AutoModelForCausalLM.from_pretrained(model_path).to(runner.device).eval()  # the same device for both
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    ifd_scores(runner, examples[:8], max_length=max_length)  # warm-up of both paths
    cherry_loop(model, tokenizer, examples[:8], max_length)
    started = time.perf_counter()
    batched = ifd_scores(runner, examples, max_length=max_length, batch_size=32)
    batched_s = time.perf_counter() - started
    started = time.perf_counter()
    single = cherry_loop(model, tokenizer, examples, max_length)
    single_s = time.perf_counter() - started
    gaps = [abs(b - s) for b, s in zip(batched, single, strict=True) if isinstance(b, float) and s is not None]
    print(f"ifd on a tiny Llama ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M params), {rows} rows, "
          f"max length {max_length}, load {os.getloadavg()[0]:.1f}:")  # fmt: skip
    print(f"  batched (runner, 32 per batch)   {rows / batched_s:8.1f} rows/s  ({batched_s:.2f} s)")
    print(f"  one at a time (Cherry LLM loop)  {rows / single_s:8.1f} rows/s  ({single_s:.2f} s)")
    print(f"  speed-up {single_s / batched_s:.1f}x (target >= 5x); largest score difference {max(gaps):.2e}")


def clustered_unit_vectors(n: int, d: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(200, d)).astype(np.float32)
    vectors = centers[rng.integers(200, size=n)] + rng.normal(scale=0.7, size=(n, d)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def _selection_child(method: str, n: int, k: int, pipe) -> None:
    import numpy as np

    from longsift.select.diverse import walk
    from longsift.select.kcenter import greedy_kcenter

    vectors = clustered_unit_vectors(n, 384)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    if method == "kcenter":
        chosen, _ = greedy_kcenter(vectors, k, 0)
    else:
        scores = np.random.default_rng(1).random(n)
        chosen = walk(vectors, list(np.argsort(-scores, kind="stable")), k, 0.1)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    pipe.send((seconds, before, peak, len(chosen), vectors.nbytes))


def bench_selection(n: int, k: int) -> None:
    context = multiprocessing.get_context("spawn")
    print(f"kcenter and diverse on {n} x 384 unit vectors, k {k}, each in a fresh process, "
          f"load {os.getloadavg()[0]:.1f}:")  # fmt: skip
    for method in ("kcenter", "diverse"):
        parent, child = context.Pipe()
        process = context.Process(target=_selection_child, args=(method, n, k, child))
        process.start()
        seconds, before, peak, chosen, nbytes = parent.recv()
        process.join()
        print(f"  {method:8s} {seconds:7.2f} s  peak RSS {peak / 1024:7.1f} MiB (after loading the vectors: "
              f"{before / 1024:.1f} MiB; the embeddings {nbytes / 2**20:.1f} MiB; an n x n matrix would be "
              f"{n * n * 4 / 2**30:.1f} GiB)  chose {chosen}")  # fmt: skip


def bench_minhash(rows: int) -> None:
    from longsift.models.embed import record_text
    from longsift.select.dedup import MinHashDedup

    base = [record_text(example) for example in load_pool()]
    rng = random.Random(0)
    texts = []
    for i in range(rows):
        words = base[i % len(base)].split()
        if i >= len(base) and words:
            words[rng.randrange(len(words))] = f"w{i}"
        texts.append(" ".join(words))
    started = time.perf_counter()
    kept = MinHashDedup().keep_texts(texts)
    seconds = time.perf_counter() - started
    print(f"dedup-minhash on {rows} rows ({len(base)} distinct pool records, cycled with edits), "
          f"load {os.getloadavg()[0]:.1f}:")  # fmt: skip
    print(f"  {rows / seconds:8.0f} rows/s ({seconds:.1f} s); kept {sum(kept)}, duplicates {rows - sum(kept)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ifd-rows", type=int, default=200)
    parser.add_argument("--vectors", type=int, default=50_000)
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=500_000, help="rows of the MinHash dedup run")
    args = parser.parse_args()
    bench_ifd(args.ifd_rows)
    bench_selection(args.vectors, args.k)
    bench_minhash(args.rows)


if __name__ == "__main__":
    main()
