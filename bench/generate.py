"""Batched generation vs one prompt at a time, on the tiny model, measured side by side in one run.

    python bench/generate.py [--prompts 64] [--max-new-tokens 64] [--batch-size 64] [--repeats 3]

Same backend, same prompts (Vicuna + Koala test prompts, a mix of lengths), greedy; the untrained tiny model rarely
emits EOS, so both runs generate the same number of tokens. Prints tokens/s of each (best of --repeats) and the
ratio (target >= 5x).
"""

from __future__ import annotations

import os
import sys

# bench/select.py (named by issue 2) shadows the standard library's `select` for scripts in this folder.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

import argparse
import tempfile
import time
from itertools import islice
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from longsift import load  # noqa: E402
from longsift.evalsets import data_root, load_eval_set  # noqa: E402
from longsift.generate import SamplingOptions, generate_prompts  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="best of N runs each (the machine may be shared)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default, every core)")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from longsift.generate import GenerationEngine
    from longsift.templates import get_template, save_template
    from longsift.tiny import build_tiny_model, example_texts

    root = data_root(args.data_dir)
    with tempfile.TemporaryDirectory() as folder:
        examples = list(islice(load(root / "alpaca_subsets" / "alpaca_public_pool.jsonl.gz"), 500))
        model_dir = build_tiny_model(Path(folder) / "tiny", example_texts(examples))
        from transformers import AutoTokenizer

        save_template(get_template("paper", AutoTokenizer.from_pretrained(model_dir)), model_dir)
        engine = GenerationEngine.open("transformers", model_dir)
        prompts = load_eval_set("vicuna,koala", root)[: args.prompts]
        options = SamplingOptions(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
        generate_prompts(engine, prompts[:4], "warmup", options)

        results = {}
        for label, batch_size in (("batched", args.batch_size), ("one at a time", 1)):
            run_options = SamplingOptions(max_new_tokens=args.max_new_tokens, batch_size=batch_size)
            seconds = float("inf")
            for _ in range(args.repeats):
                started = time.perf_counter()
                generations = generate_prompts(engine, prompts, "bench", run_options)
                seconds = min(seconds, time.perf_counter() - started)
            tokens = sum(sum(g.metadata["generation"]["new_tokens"]) for g in generations)
            results[label] = (seconds, tokens, [g.outputs for g in generations])
            print(f"{label:>14}: {len(prompts)} prompts, {tokens} new tokens in {seconds:6.2f} s "
                  f"= {tokens / seconds:8.1f} tokens/s")  # fmt: skip
    batched, single = results["batched"], results["one at a time"]
    same = sum(a == b for a, b in zip(batched[2], single[2], strict=True))
    ratio = (single[0] / single[1]) / (batched[0] / batched[1])
    print(f"identical greedy outputs: {same}/{len(prompts)}")
    print(f"batched / one-at-a-time throughput: {ratio:.1f}x (target >= 5x)")


if __name__ == "__main__":
    main()
