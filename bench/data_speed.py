"""Every data command against the best single-machine tool, side by side in one run, printed as a table.

Each cell is a fresh process (a user's one-liner pays its start-up too), best of `--repeat`, on the same input:
- `select --by chars` (JSON lines and a JSON array, as alpaca_data.json is written) and `--by words` vs DuckDB
  (`ORDER BY length(output) DESC LIMIT k`) and polars (`top_k`); words: their split on whitespace runs;
- `select --by tokens` vs the bare floor: one process, orjson lines, `Tokenizer.encode_batch` in chunks of 2,000,
  `heapq.nlargest` (a BPE tokenizer of `--vocab` tokens trained here on the pool: nothing is downloaded);
- `convert` to messages JSON lines (from JSON lines and a JSON array) vs the bare floor: orjson read + the same
  objects + orjson write, and that floor with an fsync of its output (longsift fsyncs before its rename);
- `stats --by chars` vs polars and DuckDB quantiles, and its peak RSS at `--rows` and `--rss-rows`.
The alternatives keep no quarantine and check no record; longsift does both. `--before PATH` adds a column for
another checkout of longsift (e.g. /work/main) run in the same pass, so before/after are measured side by side.
Corpora are made from the shared public Alpaca pool under $BENCH_DIR (default /tmp), never in the repository.
Usage: python bench/data_speed.py [--rows 500000 2000000] [--token-rows 58000] [--before /work/main] [--repeat 2]
       [--only stats] (only the rows whose command has every word given; --rss-rows only with stats)
"""

from __future__ import annotations

import os
import sys

# bench/select.py is beside this file: keep the folder off sys.path so `import select` finds the standard library.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

import argparse  # noqa: E402
import gzip  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import orjson  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
POOL = Path(os.environ.get("LONGSIFT_DATA", REPO.parent / "shared" / "data")) / "alpaca_subsets"
POOL = POOL / "alpaca_public_pool.jsonl.gz"

DUCK_TOP = """import duckdb
rows = duckdb.sql("SELECT * FROM read_json('{path}', format='{fmt}') ORDER BY {length} DESC LIMIT {k}").fetchall()
assert len(rows) == {k}
"""
POLARS_TOP = """import polars as pl
frame = {read}
top = frame.top_k({k}, by={length})
top = top.collect() if hasattr(top, "collect") else top
assert top.height == {k}
"""
TOKENS_FLOOR = """import heapq, sys, orjson
from tokenizers import Tokenizer
tok = Tokenizer.from_file(sys.argv[1])
lengths, batch = [], []
def flush():
    lengths.extend(len(e.ids) for e in tok.encode_batch(batch, add_special_tokens=False))
    batch.clear()
with open(sys.argv[2], "rb") as f:
    for line in f:
        batch.append(orjson.loads(line)["output"])
        if len(batch) == 2000:
            flush()
flush()
top = heapq.nlargest({k}, range(len(lengths)), key=lengths.__getitem__)
"""
CONVERT_FLOOR = """import sys, orjson
with open(sys.argv[1], "rb") as f, open(sys.argv[2], "wb") as out:
    for row, r in enumerate({records}):
        extra = r.get("input", "")
        turns = [{"role": "user", "content": r["instruction"] + ("\\n\\n" + extra if extra else "")},
                 {"role": "assistant", "content": r["output"]}]
        out.write(orjson.dumps({"id": str(row), "messages": turns, "source": sys.argv[1], "row": row,
                                "metadata": {"input": extra}}) + b"\\n")
"""
# The floor with the durability longsift gives its output (flushed and fsynced before it counts as written).
CONVERT_FLOOR_FSYNC = (
    CONVERT_FLOOR.replace("import sys", "import os, sys") + "    out.flush()\n    os.fsync(out.fileno())\n"
)
FSYNCED = "floor+fsync"
CONVERT_LINES, CONVERT_ARRAY = "map(orjson.loads, f)", "orjson.loads(f.read())"  # the floor's reads of each layout
POLARS_STATS = """import polars as pl
n = pl.scan_ndjson('{path}').select(pl.col("output").str.len_chars().alias("n"))
q = n.select([pl.len()] + [pl.col("n").quantile(p / 100, "linear").alias(str(p)) for p in (10, 25, 50, 75, 90, 95, 99)]
             + [pl.col("n").mean().alias("mean"), pl.col("n").std(ddof=0).alias("std")]).collect()
print(q)
"""
DUCK_STATS = """import duckdb
print(duckdb.sql("SELECT count(*), avg(n), quantile_cont(n, [0.1,0.25,0.5,0.75,0.9,0.95,0.99]) FROM "
                 "(SELECT length(output) AS n FROM read_json('{path}', format='newline_delimited'))").fetchall())
"""
WORDS_DUCK = "len(regexp_split_to_array(trim(output), '\\\\s+'))"
CHARS_POLARS = 'pl.col("output").str.len_chars()'
WORDS_POLARS = 'pl.col("output").str.strip_chars().str.split(" ").list.len()'


def corpus(folder: Path, rows: int, with_array: bool = True) -> tuple[Path, Path]:
    """`rows` Alpaca records (the pool's lines repeated, its bad rows too) as JSON lines and as a JSON array."""
    lines_file, array_file = folder / f"alpaca_{rows}.jsonl", folder / f"alpaca_{rows}.json"
    pool = gzip.decompress(POOL.read_bytes()).splitlines()
    if not lines_file.exists():
        with lines_file.open("wb") as out:
            for i in range(rows):
                out.write(pool[i % len(pool)] + b"\n")
    if with_array and not array_file.exists():
        import json

        with array_file.open("w", encoding="utf-8") as out:
            json.dump([orjson.loads(pool[i % len(pool)]) for i in range(rows)], out, indent=4)
    return lines_file, array_file


def tokenizer_file(folder: Path, vocab: int) -> Path:
    path = folder / f"bpe_{vocab}.json"
    if not path.exists():
        from tokenizers import Tokenizer, models, pre_tokenizers, trainers

        texts = [orjson.loads(line)["output"] for line in gzip.decompress(POOL.read_bytes()).splitlines()]
        tok = Tokenizer(models.BPE(unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.Metaspace()  # SentencePiece-style word starts
        tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab, special_tokens=["<unk>", "<s>", "</s>"]))
        tok.save(str(path))
    return path


def timed(command: list[str], env: dict[str, str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=env, cwd=tempfile.gettempdir())
        best = min(best, time.perf_counter() - started)
    return best


def peak_rss_mib(command: list[str], env: dict[str, str]) -> float:
    probe = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, capture_output=True);"
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", probe, *command], check=True, env=env, capture_output=True, text=True)
    return int(out.stdout.strip()) / 1024


def py(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


def longsift(*args: str) -> list[str]:
    return [sys.executable, "-m", "longsift", *args]


def have(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[500_000, 2_000_000])
    parser.add_argument("--token-rows", type=int, default=58_000)
    parser.add_argument("--vocab", type=int, default=32_000)
    parser.add_argument("--rss-rows", type=int, nargs="*", default=[500_000, 5_000_000])
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--before", type=Path, help="another longsift checkout, measured in the same run")
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="WORD",
        help="measure only the rows whose command contains every WORD (e.g. --only stats)",
    )
    args = parser.parse_args()
    folder = Path(os.environ.get("BENCH_DIR", tempfile.gettempdir())) / "longsift-data-speed"
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "out"
    out.mkdir(exist_ok=True)
    base = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "true"}
    versions = {"after": {**base, "PYTHONPATH": str(REPO)}}
    if args.before:
        versions = {"before": {**base, "PYTHONPATH": str(args.before.resolve())}, **versions}
    free = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"machine: {free} cores, load average {os.getloadavg()[0]:.1f}; corpora in {folder}; k={args.k}; "
          f"best of {args.repeat}; every cell a fresh process")  # fmt: skip
    k = str(args.k)
    tok = tokenizer_file(folder, args.vocab) if not args.only or "tokens" in args.only else None
    header = f"{'command':38} {'rows':>9} " + " ".join(f"{v:>8}" for v in versions) + f"  {'best alternative':28} ratio"
    print(header + "\n" + "-" * len(header))
    token_rows = [args.token_rows] if tok is not None else []
    for rows in [*token_rows, *args.rows]:
        lines, array = corpus(folder, rows, with_array=False)  # the array is written below, if a row reads it
        table: list[tuple[str, dict[str, list[str]], dict[str, list[str]], str]] = []
        if rows == args.token_rows:
            table.append(("select --by tokens (BPE 32k), JSON lines", {
                "longsift": longsift("select", str(lines), "-o", str(out / "t.json"), "--by", "tokens", "--tokenizer",
                                     str(tok), "--k", k, "--quiet")},
                {"encode_batch floor": py(TOKENS_FLOOR.format(k=k), str(tok), str(lines))}, "<= 1.2"))  # fmt: skip
        else:
            for name, path, fmt in (("JSON lines", lines, "newline_delimited"), ("JSON array", array, "array")):
                read = f"pl.read_json({str(path)!r})" if fmt == "array" else f"pl.scan_ndjson({str(path)!r})"
                alternatives = {}
                if have("duckdb"):
                    alternatives["duckdb"] = py(DUCK_TOP.format(path=path, fmt=fmt, length="length(output)", k=k))
                if have("polars"):
                    alternatives["polars"] = py(POLARS_TOP.format(read=read, k=k, length=CHARS_POLARS))
                table.append((f"select --by chars, {name}", {"longsift": longsift(
                    "select", str(path), "-o", str(out / "c.json"), "--by", "chars", "--k", k, "--quiet")},
                    alternatives, "<= 1.0"))  # fmt: skip
            words = {}
            if have("duckdb"):
                words["duckdb"] = py(DUCK_TOP.format(path=lines, fmt="newline_delimited", length=WORDS_DUCK, k=k))
            if have("polars"):
                words["polars"] = py(
                    POLARS_TOP.format(read=f"pl.scan_ndjson({str(lines)!r})", k=k, length=WORDS_POLARS)
                )
            table.append(("select --by words, JSON lines", {"longsift": longsift(
                "select", str(lines), "-o", str(out / "w.json"), "--by", "words", "--k", k, "--quiet")},
                words, "<= 1.0"))  # fmt: skip
            for name, path, read in (("JSON lines", lines, CONVERT_LINES), ("JSON array", array, CONVERT_ARRAY)):
                table.append((f"convert to messages JSONL, {name}", {"longsift": longsift(
                    "convert", str(path), "-o", str(out / "m.jsonl"), "--output-format", "messages")},
                    {"orjson floor": py(CONVERT_FLOOR.replace("{records}", read), str(path), str(out / "floor.jsonl")),
                     FSYNCED: py(CONVERT_FLOOR_FSYNC.replace("{records}", read), str(path), str(out / "floor.jsonl"))},
                    "<= 1.2"))  # fmt: skip
            stats_alt = {}
            if have("polars"):
                stats_alt["polars"] = py(POLARS_STATS.format(path=lines))
            if have("duckdb"):
                stats_alt["duckdb"] = py(DUCK_STATS.format(path=lines))
            table.append(("stats --by chars, JSON lines", {"longsift": longsift("stats", str(lines), "--by", "chars")},
                          stats_alt, "<= 1.0"))  # fmt: skip
        if args.only:
            table = [row for row in table if all(word in row[0] for word in args.only)]
        if any("JSON array" in row[0] for row in table):
            corpus(folder, rows)
        for label, mine, others, target in table:
            ours = {v: timed(mine["longsift"], env, args.repeat) for v, env in versions.items()}
            alt = {name: timed(command, base, args.repeat) for name, command in others.items()}
            best = min(alt, key=alt.__getitem__) if alt else None
            cells = " ".join(f"{seconds:7.2f}s" for seconds in ours.values())
            best = "orjson floor" if FSYNCED in alt else best  # the target is on the floor without fsync
            ratio = f"{ours['after'] / alt[best]:.2f}x (target {target})" if best else "(no alternative installed)"
            if FSYNCED in alt:  # longsift fsyncs its output (whole or not at all): the fair floor does too
                ratio += f"; {ours['after'] / alt[FSYNCED]:.2f}x the floor with fsync"
            extra = " ".join(f"{n} {s:.2f}s" for n, s in alt.items())
            print(f"{label:38} {rows:>9,} {cells}  {extra:28} {ratio}", flush=True)
    for rows in args.rss_rows if not args.only or "stats" in args.only else []:
        lines, _ = corpus(folder, rows, with_array=False)
        rss = " ".join(f"{v} {peak_rss_mib(longsift('stats', str(lines), '--by', 'chars'), env):.0f} MiB"
                       for v, env in versions.items())  # fmt: skip
        print(f"stats --by chars peak RSS, {rows:,} rows: {rss} (target < 100 MiB)", flush=True)


if __name__ == "__main__":
    main()
