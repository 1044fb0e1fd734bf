"""What a `select`, `stats` or `convert` on Ray would do, before doing it (`--dry-run`), and its progress while it
runs: shards, rows and bytes summed over the shards as they finish.

The dry run counts each shard's rows on the cluster (Parquet: from its footer; text: its rows, read as the scan
reads them, without parsing records or counting lengths) and prints shards, rows, calls and cost in the layout of
the model passes' dry run (exec/ray_passes.py). These commands call no endpoint: calls 0, cost $0; an embedding
selection (kcenter, diverse, dedup-semantic) also says how many vectors its driver will hold."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from longsift import formats
from longsift.exec import cluster, shards
from longsift.formats.rows import Limits


def count_rows(shard: str, format: str | None, limits: Limits) -> int:
    """Worker: the rows of one shard, as the scan would read them."""
    with shards.local_copy(shard) as path:
        container = formats.container_of(path, format)
        if container == "parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        return sum(1 for _ in formats.iter_raw_rows(path, container, limits=limits))


def sizes(found: Sequence[str]) -> list[int]:
    """Each shard's size in bytes (from the file system's listing: nothing is read)."""
    import fsspec

    out = []
    for shard in found:
        fs, path = fsspec.core.url_to_fs(shard)
        out.append(int(fs.size(path) or 0))
    return out


def dry_run(command: str, source: Any, *, format: str | None, limits: Limits, workers: int | None,
            address: str | None, what: str, encoder: str | None = None) -> str:  # fmt: skip
    """The lines a `--dry-run` prints: shards, rows, bytes, calls and cost; nothing else is read or written.
    `encoder`: the records are embedded on the workers (kcenter, diverse), and chosen over in the driver."""
    found = shards.expand(source)
    ray = cluster.connect(address)
    counted = ray.remote(num_cpus=1)(count_rows)
    rows = sum(ray.get([counted.remote(shard, format, limits) for shard in found]))
    pool = cluster.actors(workers, len(found))
    calls = f"{what} on the workers: no model, no endpoint"
    if encoder is not None:
        calls = f"{what} on the workers, the encoder loaded once per actor: no endpoint"
    return "\n".join([
        f"{command}: dry run on ray (only the rows were counted)",
        f"  shards:         {len(found)} to run, on {pool} worker(s)",
        f"  rows:           {rows:,}",
        f"  bytes:          {sum(sizes(found)):,}",
        f"  calls:          0 ({calls})",
        *([vectors_line(rows, encoder)] if encoder is not None else []),
        "  estimated cost: $0.0000",
    ])  # fmt: skip


def vectors_line(rows: int, encoder: str) -> str:
    """What the driver holds to choose over every record: one float32 vector a row (at most: the rows read)."""
    from longsift.models.embed import embedding_width

    width = embedding_width(encoder)
    size = f"{rows * width * 4 / 2**20:,.1f} MiB" if width else "4 bytes x the encoder's width a row"
    return f"  in the driver:  up to {rows:,} vectors x {width or '?'} float32 = {size} (embedded by {encoder})"


class Progress:
    """Progress summed over the shards as they finish: `on_bytes(done, total)` (a bar over the input's bytes) and
    one line per finished shard on stderr (`lines`)."""

    def __init__(self, command: str, found: Sequence[str], on_bytes: Callable[[int, int], None] | None,
                 lines: bool) -> None:  # fmt: skip
        self.command, self.on_bytes, self.lines = command, on_bytes, lines
        self.sizes = sizes(found) if on_bytes is not None else [0] * len(found)
        self.total, self.count = sum(self.sizes), len(found)
        self.done = self.bytes = self.rows = self.quarantined = 0
        self.started = time.monotonic()

    def __call__(self, index: int, read: int, quarantined: int) -> None:
        self.done += 1
        self.bytes += self.sizes[index]
        self.rows += read
        self.quarantined += quarantined
        if self.on_bytes is not None:
            self.on_bytes(self.bytes, self.total)
        if self.lines:
            print(f"{self.command}: shard {index + 1}/{self.count} done ({read:,} rows); {self.done}/{self.count} "
                  f"shards, {self.rows:,} rows read, {self.quarantined:,} quarantined, "
                  f"{time.monotonic() - self.started:.1f}s", file=sys.stderr, flush=True)  # fmt: skip
