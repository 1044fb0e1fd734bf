"""Selection benchmark: every number measured side by side in this one run, printed as ratios.

1. `longsift select --by chars --k 1000` (the CLI, a fresh process) vs (a) the floor: orjson line by line
   plus one len() pass, in process and as a fresh process (a CLI pays a process start-up, so the fair
   floor is the process one; both are printed), and (b) the naive pandas approach (read_json(lines=True),
   apply(len), sort), on an Alpaca-shaped JSON-lines corpus made by replicating the shared public Alpaca pool.
   The same for `--by words` against its own floor (orjson plus len(output.split()) per line).
2. Peak RSS (ru_maxrss of the CLI and its workers) on 0.5M vs 5M rows.
3. `--by nltk` end to end (bounds + parallel exact counts) vs plain single-process NLTK counting of every row.
4. `--by chars` on a JSON array of 500k rows (the layout of alpaca_data.json: json.dump indent=4) vs its floor
   (orjson.loads of the whole file plus one len() pass), and what a user would pick instead, on both inputs, each
   as a fresh process: DuckDB (`ORDER BY length(output) DESC LIMIT k` over read_json) and polars (`top_k` over
   scan_ndjson / read_json). They keep no quarantine and check no record; longsift does both.
Corpora are written under /tmp (or $BENCH_DIR), never into the repository. The machine may be shared: every
ratio compares runs made minutes apart, so read them with the load average printed beside them.
Usage: python bench/select.py [--rows 522732] [--big-rows 5000000] [--nltk-rows 52002] [--array-rows 500000]
"""

from __future__ import annotations

import os
import sys

# This file is named select.py: keep its folder off sys.path so `import select` finds the standard library.
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
POOL = (
    Path(os.environ.get("LONGSIFT_DATA", REPO.parent / "shared" / "data"))
    / "alpaca_subsets"
    / "alpaca_public_pool.jsonl.gz"
)
ENV = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}  # and cwd=REPO: `-m` puts the cwd first


def make_corpus(path: Path, rows: int) -> Path:
    """`rows` Alpaca records: the pool's lines repeated (its 10 empty responses included, as quarantine)."""
    if path.exists():
        return path
    lines = gzip.decompress(POOL.read_bytes()).splitlines(keepends=True)
    with path.open("wb") as out:
        written = 0
        while written < rows:
            take = lines[: rows - written]
            out.writelines(take)
            written += len(take)
    return path


def make_array(path: Path, rows: int) -> Path:
    """The same records as one JSON array, written as json.dump(records, f, indent=4) writes alpaca_data.json."""
    if path.exists():
        return path
    import json

    lines = gzip.decompress(POOL.read_bytes()).splitlines()
    records = [orjson.loads(lines[i % len(lines)]) for i in range(rows)]
    with path.open("w", encoding="utf-8") as out:
        json.dump(records, out, indent=4)
    return path


def floor_array(path: Path) -> None:
    lengths = [len(record["output"]) for record in orjson.loads(path.read_bytes())]
    assert lengths


def floor_array_process(path: Path) -> None:
    script = "import orjson, sys\nlengths = [len(r['output']) for r in orjson.loads(open(sys.argv[1], 'rb').read())]\n"
    subprocess.run([sys.executable, "-c", script, str(path)], check=True)


DUCKDB = """import duckdb, sys
rows = duckdb.sql("SELECT * FROM read_json('{path}', format='{fmt}') ORDER BY length(output) DESC LIMIT {k}").fetchall()
assert len(rows) == {k}
"""
POLARS = """import polars as pl
frame = {read}
top = frame.top_k({k}, by=pl.col("output").str.len_chars())
assert top.height == {k}
"""


def duckdb_process(path: Path, k: int, array: bool) -> None:
    code = DUCKDB.format(path=path, fmt="array" if array else "newline_delimited", k=k)
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def polars_process(path: Path, k: int, array: bool) -> None:
    read = f"pl.read_json({str(path)!r})" if array else f"pl.scan_ndjson({str(path)!r}).collect()"
    code = POLARS.format(read=read, k=k)
    if not array:  # the lazy query a polars user writes: top_k pushed into the scan
        code = code.replace(f"frame = {read}", f"frame = pl.scan_ndjson({str(path)!r})").replace(
            "assert top.height", "top = top.collect()\nassert top.height"
        )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def have(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def make_tiny(path: Path, corpus: Path) -> Path:
    with corpus.open("rb") as handle:
        path.write_bytes(b"".join(handle.readline() for _ in range(5)))
    return path


def timed(function, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


def floor(path: Path) -> None:
    lengths = []
    with path.open("rb") as handle:
        for line in handle:
            lengths.append(len(orjson.loads(line)["output"]))
    assert lengths


def floor_words(path: Path) -> None:
    lengths = []
    with path.open("rb") as handle:
        for line in handle:
            lengths.append(len(orjson.loads(line)["output"].split()))
    assert lengths


def floor_process(path: Path, words: bool = False) -> None:
    length = "len(orjson.loads(line)['output'].split())" if words else "len(orjson.loads(line)['output'])"
    script = f"import orjson, sys\nwith open(sys.argv[1], 'rb') as f:\n    lengths = [{length} for line in f]\n"
    subprocess.run([sys.executable, "-c", script, str(path)], check=True)


def naive_pandas(path: Path, k: int) -> None:
    import pandas as pd

    frame = pd.read_json(path, lines=True)
    frame["length"] = frame["output"].apply(len)
    top = frame.sort_values("length", ascending=False, kind="stable").head(k).sort_index()
    top.drop(columns="length").to_json(path.with_suffix(".pandas.json"), orient="records", indent=4)


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "longsift", "select", *args, "--quiet"]


def run_cli(*args: str) -> None:
    subprocess.run(cli(*args), check=True, env=ENV, capture_output=True, cwd=REPO)


def peak_rss_mib(command: list[str]) -> float:
    """ru_maxrss of `command` and every process it waited for (its workers), from a fresh parent."""
    probe = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, capture_output=True);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", probe, *command], check=True, env=ENV, capture_output=True, text=True,
                         cwd=REPO)  # fmt: skip
    return int(out.stdout.strip()) / 1024


def plain_nltk(path: Path) -> int:
    """What a user writes: one process, NLTK's word_tokenize (Punkt English + Treebank) on every response."""
    sys.path.insert(0, str(REPO))
    from longsift.lengths import get_unit

    unit = get_unit("nltk")  # the same NLTK code path as nltk.word_tokenize, without punkt_tab on disk
    with path.open("rb") as handle:
        return sum(unit.count_one(orjson.loads(line)["output"]) for line in handle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=28 * 18669)
    parser.add_argument("--big-rows", type=int, default=5_000_000)
    parser.add_argument("--small-rows", type=int, default=500_000)
    parser.add_argument("--nltk-rows", type=int, default=52_002)
    parser.add_argument("--array-rows", type=int, default=500_000)
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--only-alternatives", action="store_true", help="run [4] only")
    parser.add_argument("--skip-rss", action="store_true")
    args = parser.parse_args()
    folder = Path(os.environ.get("BENCH_DIR", tempfile.gettempdir())) / "longsift-bench"
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "out"
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; corpora in {folder}; k={args.k}")
    if args.only_alternatives:
        alternatives(folder, out, args)
        return

    corpus = make_corpus(folder / f"alpaca_{args.rows}.jsonl", args.rows)
    print(f"\n[1] chars, {args.rows:,} Alpaca-shaped rows ({corpus.stat().st_size / 2**20:.0f} MiB JSONL)")
    t_floor = timed(lambda: floor(corpus), 3)
    t_floor_proc = timed(lambda: floor_process(corpus), 3)
    t_cli = timed(lambda: run_cli(str(corpus), "-o", str(out / "chars.json"), "--k", str(args.k), "--by", "chars"), 3)
    t_pandas = timed(lambda: naive_pandas(corpus, args.k))
    print(f"floor (orjson lines + len, in process)   {t_floor:7.2f} s")
    print(f"floor as a fresh process                  {t_floor_proc:7.2f} s")
    print(f"longsift select CLI (fresh process)       {t_cli:7.2f} s")
    print(f"naive pandas (read_json + apply + sort)   {t_pandas:7.2f} s")
    print(f"RATIO cli / floor(in process)   = {t_cli / t_floor:.2f}x   (target <= 1.5)")
    print(f"RATIO cli / floor(process)      = {t_cli / t_floor_proc:.2f}x")
    print(f"RATIO pandas / cli              = {t_pandas / t_cli:.1f}x   (target >= 5)")
    tiny = make_tiny(folder / "alpaca_5.jsonl", corpus)
    t_start = timed(lambda: run_cli(str(tiny), "-o", str(out / "tiny.json"), "--k", "2"), 5)
    print(f"(the CLI's start-up: the same command on 5 rows takes {t_start:.2f} s)")

    t_floor_w = timed(lambda: floor_words(corpus), 3)
    t_floor_w_proc = timed(lambda: floor_process(corpus, words=True), 3)
    t_cli_w = timed(lambda: run_cli(str(corpus), "-o", str(out / "words.json"), "--k", str(args.k), "--by", "words"), 3)
    print("\n[1b] words, the same rows; floor: orjson lines + len(output.split())")
    print(f"floor (in process) {t_floor_w:.2f} s, as a fresh process {t_floor_w_proc:.2f} s, CLI {t_cli_w:.2f} s")
    print(f"RATIO cli / floor(in process)   = {t_cli_w / t_floor_w:.2f}x   (target <= 1.5)")
    print(f"RATIO cli / floor(process)      = {t_cli_w / t_floor_w_proc:.2f}x")

    if not args.skip_rss:
        small = make_corpus(folder / f"alpaca_{args.small_rows}.jsonl", args.small_rows)
        big = make_corpus(folder / f"alpaca_{args.big_rows}.jsonl", args.big_rows)
        rss_small = peak_rss_mib(cli(str(small), "-o", str(out / "small.json"), "--k", str(args.k)))
        rss_big = peak_rss_mib(cli(str(big), "-o", str(out / "big.json"), "--k", str(args.k)))
        print(f"\n[2] peak RSS: {args.small_rows:,} rows {rss_small:.0f} MiB, {args.big_rows:,} rows {rss_big:.0f} MiB")
        print(f"RATIO rss(5M) / rss(0.5M)       = {rss_big / rss_small:.2f}x   (target <= 1.2)")

    nltk_corpus = make_corpus(folder / f"alpaca_{args.nltk_rows}.jsonl", args.nltk_rows)
    print(f"\n[3] nltk, {args.nltk_rows:,} rows, k={args.k}")
    t_nltk_cli = timed(lambda: run_cli(str(nltk_corpus), "-o", str(out / "nltk.json"), "--k", str(args.k),
                                       "--preset", "paper"))  # fmt: skip
    t_plain = timed(lambda: plain_nltk(nltk_corpus))
    print(f"longsift select --preset paper (CLI)      {t_nltk_cli:7.2f} s  ({args.nltk_rows / t_nltk_cli:,.0f} rows/s)")
    print(f"plain NLTK, one process, every row        {t_plain:7.2f} s  ({args.nltk_rows / t_plain:,.0f} rows/s)")
    print(f"RATIO plain nltk / longsift     = {t_plain / t_nltk_cli:.1f}x   (target >= 1.7)")
    alternatives(folder, out, args)


def alternatives(folder: Path, out: Path, args: argparse.Namespace) -> None:
    """[4] JSON lines and a JSON array of `--array-rows` rows: longsift, its floor, DuckDB, polars; side by side."""
    k, rows = args.k, args.array_rows
    lines = make_corpus(folder / f"alpaca_{rows}.jsonl", rows)
    array = make_array(folder / f"alpaca_{rows}.json", rows)
    print(
        f"\n[4] chars, k={k}, {rows:,} rows: JSON lines ({lines.stat().st_size / 2**20:.0f} MiB) and a JSON array "
        f"indent=4 ({array.stat().st_size / 2**20:.0f} MiB); load average {os.getloadavg()[0]:.1f}"
    )
    results: dict[str, dict[str, float]] = {}
    for name, path, is_array in (("jsonl", lines, False), ("array", array, True)):
        times = results[name] = {}
        times["longsift"] = timed(lambda p=path: run_cli(str(p), "-o", str(out / "alt.json"), "--k", str(k)), 3)
        if is_array:
            times["floor"] = timed(lambda p=path: floor_array(p), 3)
            times["floor process"] = timed(lambda p=path: floor_array_process(p), 3)
        else:
            times["floor"] = timed(lambda p=path: floor(p), 3)
            times["floor process"] = timed(lambda p=path: floor_process(p), 3)
        if have("duckdb"):
            times["duckdb"] = timed(lambda p=path, a=is_array: duckdb_process(p, k, a), 3)
        if have("polars"):
            times["polars"] = timed(lambda p=path, a=is_array: polars_process(p, k, a), 3)
        for label, seconds in times.items():
            print(f"{name:5}  {label:32} {seconds:7.2f} s")
    for name, times in results.items():
        mine = times["longsift"]
        print(f"RATIO {name} longsift / floor(in process) = {mine / times['floor']:.2f}x   (target <= 1.5)")
        print(f"RATIO {name} longsift / floor(process)    = {mine / times['floor process']:.2f}x")
        for other in ("duckdb", "polars"):
            if other in times:
                print(f"RATIO {name} longsift / {other:6}            = {mine / times[other]:.2f}x   (target <= 1.0)")
            else:
                print(f"({other} is not installed: pip install 'longsift[bench]')")
    print(
        f"RATIO array / jsonl (longsift)          = {results['array']['longsift'] / results['jsonl']['longsift']:.2f}x"
    )


if __name__ == "__main__":
    main()
