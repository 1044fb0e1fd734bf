"""Ray executor benchmark, measured side by side in this one run and printed as ratios.

1. `select --k 1000` by `nltk` and by `tokens` on N rows (default 5M, the public Alpaca pool replicated, cut in
   8 shards): the local executor (one process per idle core) vs `--executor ray` with 1 and with 2 workers
   (actors) on a local Ray cluster; scaling efficiency per added worker = (t_1 / t_2) / 2 (1.0: linear).
2. Ray's fixed overhead: `select --by chars --k 1000` on the 18.7k-row pool (4 shards) on Ray vs local.
Each Ray worker is one actor reserving one CPU, and its tokenizer threads use that CPU only (RAYON_NUM_THREADS);
the local executor uses every core (nltk: one process a core; tokens: the tokenizer's threads).
Every selection is checked equal to the local one before its time is printed. Corpora go under /tmp (or
$BENCH_DIR), never into the repository. On a shared machine read the ratios with the load average beside them.
Usage: python bench/ray_scale.py [--rows 5000000] [--shards 8]   (needs pip install 'longsift[ray]')
"""

from __future__ import annotations

import os
import sys

# bench/ holds select.py: keep this folder off sys.path so `import select` finds the standard library.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

import argparse  # noqa: E402
import gzip  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
POOL = Path(os.environ.get("LONGSIFT_DATA", REPO.parent / "shared" / "data")) / "alpaca_subsets"
POOL_FILE = POOL / "alpaca_public_pool.jsonl.gz"


def write_shards(lines: list[bytes], rows: int, shards: int, folder: Path) -> tuple[Path, Path]:
    """`rows` rows of the pool replicated: one file, and the same rows cut into `shards` files."""
    folder.mkdir(parents=True, exist_ok=True)
    whole, parts = folder / "pool.jsonl", folder / "shards"
    if whole.is_file() and parts.is_dir() and len(list(parts.iterdir())) == shards:
        return whole, parts
    parts.mkdir(exist_ok=True)
    per = rows // shards + 1
    with whole.open("wb") as out:
        for i in range(shards):
            chunk = b"".join(lines[(n % len(lines))] for n in range(i * per, min(rows, (i + 1) * per)))
            out.write(chunk)
            (parts / f"part-{i:03d}.jsonl").write_bytes(chunk)
    return whole, parts


def tokenizer(folder: Path) -> str:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    lines = [line.decode() for line in gzip.decompress(POOL_FILE.read_bytes()).splitlines()[:2000]]
    made = Tokenizer(models.BPE(unk_token="<unk>"))
    made.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    made.train_from_iterator(lines, trainers.BpeTrainer(vocab_size=2000, special_tokens=["<unk>"]))
    PreTrainedTokenizerFast(tokenizer_object=made, unk_token="<unk>").save_pretrained(folder)
    return str(folder)


def timed(source: Path, **options) -> tuple[float, str]:
    """Seconds for one selection, and a digest of the selection as written (fastchat: ids, turns, order)."""
    import hashlib

    from longsift import formats
    from longsift.select import select

    started = time.perf_counter()
    selection = select(source, k=1000, quiet=True, **options)  # quiet: no line per finished shard
    seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "selection.json"
        formats.write(selection.examples, out, "fastchat")
        return seconds, hashlib.sha256(out.read_bytes()).hexdigest()


def table(rows: list[list[str]]) -> str:
    """Rows of cells as an aligned text table (the first row is the header)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths,
             strict=True))) for row in rows]  # fmt: skip
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--shards", type=int, default=8)
    args = parser.parse_args()
    import ray

    base = Path(os.environ.get("BENCH_DIR", tempfile.gettempdir())) / "longsift-bench-ray"
    lines = gzip.decompress(POOL_FILE.read_bytes()).splitlines(keepends=True)
    whole, shards = write_shards(lines, args.rows, args.shards, base / f"rows-{args.rows}")
    pool, pool_shards = write_shards(lines, len(lines), 4, base / "pool")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}})  # fmt: skip
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {args.rows:,} rows in "
          f"{args.shards} shards")  # fmt: skip
    units = {"nltk": {"by": "nltk"}, "tokens": {"by": "tokens", "tokenizer": tokenizer(base / "bpe")}}
    rows = [["unit", "local s", "ray 1 worker s", "ray 2 workers s", "local/ray1", "local/ray2",
             "efficiency per added worker", "rows/s ray2"]]  # fmt: skip
    for name, unit in units.items():
        local, expected = timed(whole, **unit)
        times = {}
        for workers in (1, 2):
            times[workers], got = timed(shards, executor="ray", workers=workers, **unit)
            assert got == expected, f"--by {name}: ray with {workers} worker(s) selected otherwise than local"
        efficiency = times[1] / times[2] / 2
        rows.append([f"--by {name}", f"{local:.1f}", f"{times[1]:.1f}", f"{times[2]:.1f}", f"{local / times[1]:.2f}x",
                     f"{local / times[2]:.2f}x", f"{efficiency:.2f} (target >= 0.8)",
                     f"{args.rows / times[2]:,.0f}"])  # fmt: skip
        print(f"  --by {name}: ray (1 and 2 workers) selected exactly what local selected", flush=True)
    local, expected = timed(pool, by="chars")
    on_ray, got = timed(pool_shards, by="chars", executor="ray", workers=2)
    assert got == expected, "--by chars on the pool: ray selected otherwise than local"
    print()
    print(f"select --k 1000 on {args.rows:,} rows ({args.shards} shards; ray: a local cluster of {os.cpu_count()} "
          "CPUs); every selection checked equal to local's before its time is shown")  # fmt: skip
    print(table(rows))
    print()
    print(table([["fixed overhead", "local s", "ray 2 workers s", "overhead s"],
                 [f"--by chars, {len(lines):,}-row pool (4 shards)", f"{local:.2f}", f"{on_ray:.2f}",
                  f"+{on_ray - local:.2f}"]]))  # fmt: skip
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    ray.shutdown()


if __name__ == "__main__":
    main()
