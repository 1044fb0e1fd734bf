"""`select` and `stats` on Ray: a map over shards (each shard scanned by selection's own code, longsift.select.run,
in one Ray Data actor) and an exact merge in the driver.

Why the merge is exact: a shard's best k (ties to its earlier rows) holds every record of that shard among the
pool's best k, and a key depends only on the record (its length, score or content hash), never on its row; so
the top k of the shards' top k, with rows renumbered to the pool's (shard offset + row), is the local
executor's top k, tie for tie. Records are rebuilt from their raw JSON at their pool row, as `materialize` does.
Quarantine: each shard's rejections, named shard:line, in shard order; rows read = kept + quarantined summed.
Ids: a record's own id is unique across the whole pool, as local checks it (exec/shard_ids.py).
What needs the whole pool in order (`--dedup`) is refused: it would be exact only within a shard.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from longsift import formats
from longsift.errors import UsageError
from longsift.exec import cluster, shard_ids, shards, survey
from longsift.exec.shard_ids import rebased
from longsift.formats.load import LoadReport, Quarantine, Rejection
from longsift.formats.rows import Limits
from longsift.records import Example
from longsift.select.base import TopK
from longsift.select.scoring import Plan

if TYPE_CHECKING:
    from longsift.exec.scan_commits import ScanCommits

Entry = tuple[Any, int, tuple[int | None, Any]]  # (key, row in the shard, (length, payload))


@dataclass
class ShardResult:
    """What one shard sends back: its best k (or every length, for stats), its counts and its rejections."""

    index: int
    shard: str
    entries: list[Entry]
    read: int
    kept: int
    rejections: list[Rejection]
    layout: str | None
    dropped: Counter[str] = field(default_factory=Counter)
    exact_counts: int = 0
    ids: shard_ids.OwnIds | None = None  # kept records with their own id (row, line, id)
    records: dict[int, Any] = field(default_factory=dict)  # the records at the rows asked for (duplicate ids)
    duplicates: shard_ids.OwnIds = field(default_factory=list)  # rows whose id an earlier shard holds

    def own_id_rows(self) -> set[int]:
        return {row for row, _, _ in self.ids or ()}


def scan_shard(index: int, shard: str, plan: Plan, format: str | None, limits: Limits,
               fetch: Sequence[int] = ()) -> ShardResult:  # fmt: skip
    """Worker: the local executor's scan of one shard (one process: the cluster is the parallelism); `fetch`:
    rows whose records travel back too."""
    from longsift.select import run

    sink = Quarantine(None, keep=1 << 62)  # every rejection travels back, so the driver's quarantine is whole
    with shards.local_copy(shard) as path:
        outcome, _ = run(plan, path, format=format, workers=1, quarantine=sink, limits=limits)
        records = shard_ids.records_at(path, set(fetch), format, limits)
    report = outcome.report
    named = [dataclasses.replace(r, source=shard) for r in report.rejections]
    return ShardResult(index, shard, outcome.heap.items(), report.read, report.kept, named, outcome.layout,
                       outcome.dropped, outcome.exact_counts, outcome.own_ids, records)  # fmt: skip


class ShardScanner:
    """A Ray Data actor: scans the shards it is given (the length unit, or the method's model, loads once per actor:
    here, before its first shard; the model runner is kept per process, longsift.models.embed.runner_for).
    `again`: shards scanned a second time, for k + their duplicate ids, fetching those rows' records
    (exec/shard_ids.py)."""

    def __init__(self, plan: Plan, format: str | None, limits: Limits, again: dict[int, list[int]]) -> None:
        self.plan, self.format, self.limits, self.again = plan, format, limits, again
        reserved = cluster.reserved_cpus()  # a fast tokenizer's threads: the cores this actor reserved, not the node's
        os.environ.setdefault("RAYON_NUM_THREADS", str(reserved))
        runner = getattr(plan.method, "runner", None)  # ifd, superfilter: a causal LM on this actor's device
        if runner is not None:
            runner().load()

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        results = [self.scan(int(i), str(s)) for i, s in zip(batch["index"], batch["shard"], strict=True)]
        return {"index": [r.index for r in results], "result": results}

    def scan(self, index: int, shard: str) -> ShardResult:
        fetch = self.again.get(index, [])
        return scan_shard(index, shard, shard_plan(self.plan, fetch), self.format, self.limits, fetch)


def shard_plan(plan: Plan, fetch: Sequence[int]) -> Plan:
    """The plan of a shard's scan: a second scan for duplicate ids keeps k + their count (exec/shard_ids.py)."""
    return dataclasses.replace(plan, k=plan.k + len(fetch)) if fetch and plan.k is not None else plan


def map_shards(
    found: Sequence[str], plan: Plan, *, format: str | None, limits: Limits, workers: int | None,
    address: str | None, on_shard: Callable[[ShardResult], None] | None = None,
    again: dict[int, list[int]] | None = None, gpus_per_worker: float = 0.0, store: ScanCommits | None = None,
    say: Callable[[str], None] | None = None, scanner: type = ShardScanner,
) -> list[ShardResult]:  # fmt: skip
    """Every shard's result (only those of `again`, when given), in shard order. `store`: the shards committed by
    an earlier run are taken from it, not scanned, and each one scanned here is committed as it arrives
    (exec/scan_commits.py). `scanner`: ShardScanner, or one that also maps the records (exec/ray_pool.py)."""
    cluster.connect(address)
    again = again or {}
    chosen = [i for i in range(len(found)) if not again or i in again]
    results = store.done(chosen, again) if store is not None else {}
    items = [{"index": i, "shard": found[i]} for i in chosen if i not in results]
    if say is not None and store is not None:
        say(f"select on ray: {len(chosen)} shard(s){' scanned again for duplicate ids' if again else ''}, "
            f"{len(results)} already done ({store.work}), {len(items)} to run")  # fmt: skip
    done = set(results)
    for result in itertools.chain(list(results.values()), scanned(items, plan, format, limits, workers,
                                                                   gpus_per_worker, again, scanner)):  # fmt: skip
        if store is not None and result.index not in done:
            store.commit(result, again.get(result.index, []), say)  # committed as it arrives
        results[result.index] = result
        if on_shard is not None:
            on_shard(result)
    return [results[i] for i in chosen]


def scanned(items: list[dict[str, Any]], plan: Plan, format: str | None, limits: Limits, workers: int | None,
            gpus_per_worker: float, again: dict[int, list[int]], scanner: type = ShardScanner,
            ) -> Iterator[ShardResult]:  # fmt: skip
    """The shards of `items` scanned on the cluster (a Ray Data pipeline of one shard a row over an actor pool),
    each result as its shard finishes."""
    if not items:
        return
    import ray

    pool = cluster.actors(workers, len(items), gpus_per_worker)
    dataset = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
        scanner, fn_constructor_args=(plan, format, limits, again), batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=pool), num_cpus=1, num_gpus=gpus_per_worker or None,
        batch_format="default",
    )  # fmt: skip
    for row in dataset.iter_rows():
        yield row["result"]


def resolve_ids(results: list[ShardResult], found: Sequence[str], plan: Plan, *, format: str | None,
                limits: Limits, workers: int | None, address: str | None, gpus_per_worker: float = 0.0,
                store: ScanCommits | None = None, say: Callable[[str], None] | None = None,
                scanner: type = ShardScanner) -> list[ShardResult]:  # fmt: skip
    """The shards' results with ids duplicated across shards quarantined where local would (exec/shard_ids.py)."""
    duplicated = shard_ids.duplicates([r.ids for r in results])
    if not duplicated:
        return results
    again = {index: [row for row, _, _ in rows] for index, rows in duplicated.items()}
    for redone in map_shards(found, plan, format=format, limits=limits, workers=workers, address=address,
                             again=again, gpus_per_worker=gpus_per_worker, store=store, say=say,
                             scanner=scanner):  # fmt: skip
        redone.duplicates = duplicated[redone.index]
        results[redone.index] = redone
    return results


@dataclass
class Merged:
    heap: TopK[tuple[int | None, Any]]
    report: LoadReport
    dropped: Counter[str]
    exact_counts: int
    layout: str | None
    shards: list[ShardResult]
    workers: int = 1


def merge(results: Sequence[ShardResult], plan: Plan, name: str, quarantine: Quarantine) -> Merged:
    """The pool's top k out of the shards', rows renumbered to the pool's; the quarantine in shard order."""
    heap: TopK[tuple[int | None, Any]] = TopK(plan.k)
    report = LoadReport(name)
    dropped: Counter[str] = Counter()
    offset = exact = 0
    try:
        for result in results:
            report.read += result.read
            report.kept += result.kept - len(result.duplicates)
            for rejection in rejections(result):
                quarantine.add(rejection, report)  # shard:line (row in the shard), as the shard's own reader says
            excluded = {row for row, _, _ in result.duplicates}
            for key, row, (length, payload) in result.entries:
                if row not in excluded:
                    heap.push(key, offset + row, (length, (result.index, row, payload)))
            dropped.update(result.dropped)
            exact += result.exact_counts
            offset += result.read
        quarantine.close()
    except BaseException:
        quarantine.abort()
        raise
    layouts = {r.layout for r in results if r.layout}
    report.layout = next(iter(layouts)) if len(layouts) == 1 else ""
    return Merged(heap, report, dropped, exact, report.layout or None, list(results))


def rejections(result: ShardResult) -> list[Rejection]:
    """A shard's rejections in row order: its scan's, and its rows whose id an earlier shard holds."""
    if not result.duplicates:
        return result.rejections
    repeated = [Rejection(result.shard, row, line, f"duplicate id {rid!r}", result.records.get(row))
                for row, line, rid in result.duplicates]  # fmt: skip
    return sorted([*result.rejections, *repeated], key=lambda r: r.row)


def materialize(merged: Merged) -> tuple[list[Example], list[int | None]]:
    """The winners as Examples at their pool rows (source: their shard), in pool order."""
    examples, lengths = [], []
    own: dict[int, set[int]] = {}  # shard index -> its rows whose record has its own id
    for _, row, (length, (index, shard_row, payload)) in merged.heap.items():
        result = merged.shards[index]
        if isinstance(payload, Example):
            if index not in own:
                own[index] = result.own_id_rows()
            examples.append(rebased(payload, shard_row, row, shard_row in own[index]))
        else:
            schema = formats.SCHEMAS.get(result.layout or "")
            examples.append(schema.parse(orjson.loads(payload), row, result.shard))
        lengths.append(length)
    return examples, lengths


def select(source: Any, plan: Plan, *, format: str | None, limits: Limits, workers: int | None,
           address: str | None, quarantine: Quarantine, on_progress: Callable[[int, int], None] | None = None,
           lines: bool = False, command: str = "select", gpus_per_worker: float = 0.0,
           work: Path | None = None, scanner: type = ShardScanner) -> tuple[Merged, str]:  # fmt: skip
    """The local executor's `select.run`, on Ray: `source` is a file, folder, glob, list or @FILE of shards.
    Progress over the finished shards: `on_progress(bytes done, total)`, and a line a shard on stderr (`lines`).
    `work`: a run folder where each shard's result is committed as it completes; a rerun with the same folder,
    shards and plan scans only the shards not done (exec/scan_commits.py)."""
    if not isinstance(source, str | Path | list | tuple):
        raise UsageError("--executor ray reads files (a folder, glob or list of shards), not records in memory")
    if plan.dedup:
        raise UsageError("--dedup needs the whole pool in order: use --executor local (on Ray it would hold only "
                         "within a shard)")  # fmt: skip
    found = shards.expand(source)
    name = str(source) if isinstance(source, str | Path) else ",".join(map(str, source))
    plan = dataclasses.replace(plan, own_ids=True)
    store = None
    if work is not None and scanner is ShardScanner:  # a mapping scanner's vectors are not committed: scan again
        from longsift.exec.scan_commits import ScanCommits

        store = ScanCommits(work.resolve(), found, plan, format, limits)
    common: dict[str, Any] = {"format": format, "limits": limits, "workers": workers, "address": address,
                              "gpus_per_worker": gpus_per_worker, "store": store,
                              "say": _err if lines else None, "scanner": scanner}  # fmt: skip
    progress = survey.Progress(command, found, on_progress, lines)
    mapped = map_shards(found, plan, **common, on_shard=lambda r: progress(r.index, r.read, len(r.rejections)))
    results = resolve_ids(mapped, found, plan, **common)
    merged = merge(results, plan, name, quarantine)
    merged.workers = cluster.actors(workers, len(found), gpus_per_worker)
    return merged, name


def lengths(source: str | Path | Sequence[str], by: str, tokenizer: str | None, *, format: str | None,
            limits: Limits, workers: int | None, address: str | None,
            lines: bool = False) -> tuple[list[int], LoadReport]:  # fmt: skip
    """Every record's length in `by`, in pool order, and the pool's counts (stats on Ray)."""
    from longsift.select import make_plan

    plan = make_plan("longest", None, by=by, tokenizer=tokenizer if by == "tokens" else None, keep_payload=False)
    merged, _ = select(source, plan, format=format, limits=limits, workers=workers, address=address,
                       quarantine=Quarantine(), lines=lines, command=f"stats --by {by}")  # fmt: skip
    return [n for _, _, (n, _) in merged.heap.items() if n is not None], merged.report


def stats(
    source: Any, by: Sequence[str], *, compare: Any = None, tokenizer: str | None = None, workers: int | None = None,
    format: str | None = None, limits: Any = None, address: str | None = None, lines: bool = False,
) -> Any:  # fmt: skip
    """`longsift.select.stats.stats` with every length counted on Ray (the same units, the same statistics)."""
    from longsift.lengths import check_units, get_unit, unit_record
    from longsift.select.stats import Distribution, StatsReport, UnitStats

    check_units(by, tokenizer)
    limits = limits or Limits()
    units: dict[str, UnitStats] = {}
    report = None
    for unit in by:
        counted, report = lengths(source, unit, tokenizer, format=format, limits=limits, workers=workers,
                                  address=address, lines=lines)  # fmt: skip
        kept = array("i", counted)  # the compact lengths array the local stats keep
        stat = UnitStats(unit_record(get_unit(unit, tokenizer)), Distribution.of(kept), lengths=kept)
        if compare is not None:
            other, _ = lengths(compare, unit, tokenizer, format=None, limits=limits, workers=workers, address=address)
            stat.compare, stat.compare_lengths = Distribution.of(other), array("i", other)
        units[unit] = stat
    assert report is not None, "at least one unit is needed"
    return StatsReport(str(source), str(compare) if compare else None, report.read, report.kept,
                       report.quarantined, units)  # fmt: skip


def convert_records(source: Any, *, format: str | None, limits: Limits, address: str | None,
                    quarantine: Quarantine, lines: bool = False) -> tuple[list[Example], LoadReport]:  # fmt: skip
    """`convert` on Ray: every record of every shard, read and checked on the cluster, in pool order."""
    from longsift.select import make_plan

    plan = make_plan("longest", None, by="chars")  # k=None keeps every valid record; chars cost nothing
    merged, _ = select(source, plan, format=format, limits=limits, workers=None, address=address,
                       quarantine=quarantine, lines=lines, command="convert")  # fmt: skip
    return materialize(merged)[0], merged.report


def _err(line: str) -> None:
    import sys

    print(line, file=sys.stderr, flush=True)
