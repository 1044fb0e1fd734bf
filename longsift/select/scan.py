"""Read a source once, score its records, keep the best k: in parallel blocks for JSON lines, streamed otherwise.

JSON lines (plain or gzip) are cut into blocks of whole lines; a process (a worker, or the parent itself while
the workers are busy) parses, validates and scores a block (see blocks.py), and returns only what could
still be selected plus every rejection. The parent adds
the row and line counts of earlier blocks (so quarantine messages keep the right file:line), checks
what needs the whole file in order (duplicate ids, `dedup`), and keeps a bounded heap: memory is
O(k + a few blocks), whatever the file size. Only the k survivors become Examples.
"""

from __future__ import annotations

import dataclasses
import os
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from longsift import formats
from longsift.errors import DataError
from longsift.formats import rows as containers
from longsift.formats.load import LoadReport, Quarantine, Rejection
from longsift.formats.rows import Limits
from longsift.formats.schema import RecordError, has_own_id
from longsift.lengths import FastCount, get_unit
from longsift.lengths.tokens import one_thread_each, restore_threads
from longsift.records import Example
from longsift.select.base import TopK
from longsift.select.blocks import BlockResult, OwnId, Rejected, _typed_decoder, decode_row, hot_loop_applies, scan_hot
from longsift.select.scoring import Item, Plan, Scored, has_input, score

Progress = Callable[[int, int], None]  # (bytes done, bytes in all) of the file on disk
BATCH_RECORDS = 2000


@dataclass(frozen=True)
class Layout:
    """The record layout of a text file, fixed by its first record of a known layout."""

    name: str | None
    first_block: int = 0  # where that record is: earlier rows are of an unknown layout
    first_index: int = 0  # (its index among the block's raw rows)

    def known_from(self, block: int) -> int:
        """The first raw row of `block` that the layout applies to (past the end: none)."""
        if block < self.first_block or self.name is None:
            return 1 << 62
        return self.first_index if block == self.first_block else 0


@dataclass
class Outcome:
    """What a scan leaves: the heap of winners and the counts the summary reports."""

    heap: TopK[tuple[int | None, Any]]
    report: LoadReport
    dropped: Counter[str] = field(default_factory=Counter)
    exact_counts: int = 0
    layout: str | None = None
    workers: int = 1
    lengths: array | None = None  # `Plan.lengths_only`: every kept record's length, in row order (no heap)
    own_ids: list[tuple[int, int | None, str]] | None = None  # `Plan.own_ids`: (row, line, id), row order


@dataclass
class LengthsResult(BlockResult):
    """A block scanned for lengths only: `lengths[row]` for each of its rows, -1 for a rejected one."""

    lengths: array = field(default_factory=lambda: array("q"))


def find_layout(block: containers.Block, opened: containers.Opened) -> tuple[str, int] | None:
    """(layout, raw row index) of the block's first record of a known layout, by the load stage's rules."""
    source, limits = opened.name, opened.limits
    data = opened.pread(block.start, block.end) if block.data is None and block.kind == "lines" else None
    rows = containers.rows_of_block(block, data)
    for i in range(len(rows.raws)):
        if rows.blank(i):
            continue
        try:
            found = containers.decide(rows, i, 0, limits, source)
        except DataError:
            return None  # the scan of this block reports it
        if found.data is not None:
            try:
                return formats.schema_for(found.data, source).NAME, i
            except formats.UnknownFormatError:
                pass
    return None


def scan_block(
    source: str, block: containers.Block, plan: Plan, layout: Layout, limits: Limits, threshold: Any,
    fd: int | None = None,
) -> BlockResult:  # fmt: skip
    """Worker: parse, validate and score one block. Rows and lines are local to the block. A block sent
    without its bytes is read from `fd`, the parent's handle on the file (inherited by a forked worker)."""
    data = None
    if block.data is None and block.kind == "lines":
        assert fd is not None, "a block without its bytes needs the file's handle"
        data = os.pread(fd, block.end - block.start, block.start)
    rows = containers.rows_of_block(block, data, limits.record_bytes)
    rows.first_line = block.first_line
    schema = formats.SCHEMAS.get(layout.name) if layout.name else None
    known_from = layout.known_from(block.index)
    hot = hot_setup(plan, layout)
    if hot is not None and known_from == 0:
        assert schema is not None and schema.FAST is not None  # as hot_setup found them
        if hot.count_many is not None:  # a tokenizer: the block's texts in one batch call
            hot = hot.primed(_block_texts(rows, schema.FAST, limits))
        if plan.lengths_only:
            return scan_lengths(rows, source, schema, schema.FAST, hot, limits)
        return scan_hot(rows, source, schema, schema.FAST, plan, hot, threshold, limits)
    items: list[Item] = []
    rejections: list[tuple[int, int, str, Any]] = []
    ids: list[tuple[int, int, str, bytes]] = []
    row = 0
    for i in range(len(rows.raws)):
        if rows.blank(i):
            continue
        record, raw = decode_row(rows, i, row, limits, source, rejections)
        line = rows.line_of(i)
        if record is None:
            pass
        elif schema is None or i < known_from:
            rejections.append((row, line, f"unknown record layout with fields {sorted(record)[:12]}", record))
        else:
            try:
                example = schema.parse(record, row, source)
            except RecordError as exc:
                rejections.append((row, line, str(exc), record))
            else:
                if has_own_id(record):
                    ids.append((row, line, example.id, raw))
                items.append(Item(row, example.responses, has_input(example), example, raw))
        row += 1
    scored = score(items, plan, threshold, local_top=not ids and not plan.dedup)
    return BlockResult(row, rows.lines, rejections, ids, scored, block.first_line)


def hot_setup(plan: Plan, layout: Layout) -> FastCount | None:
    """The unit's fast counter when the plan's blocks take the hot loop (blocks.py), else None."""
    schema = formats.SCHEMAS.get(layout.name) if layout.name else None
    if schema is None or schema.FAST is None or not plan.needs_length:
        return None
    fast = get_unit(plan.by, plan.tokenizer).fast
    return fast if fast is not None and (_plain_lengths(plan) or hot_loop_applies(plan)) else None


def _plain_lengths(plan: Plan) -> bool:
    """Lengths only, of every record the schema accepts (no filter: then the general path, in row order)."""
    filters = plan.min_length, plan.max_length, plan.floor
    return plan.lengths_only and filters == (None, None, None) and not (plan.dedup or plan.drop_empty_input)


_UNREADABLE = (orjson.JSONDecodeError, AttributeError, TypeError)  # bad JSON, not an object, no row


def _block_texts(rows: containers.BlockRows, fast: Any, limits: Limits) -> Iterator[str]:
    """The responses the hot loop will count, as far as orjson and the layout's `response` see them (a text
    missed here is counted on its own, one seen here and then rejected costs only its count)."""
    loads, response = orjson.loads, fast.response
    for raw in rows.raws:
        if raw is None or len(raw) > limits.record_bytes:
            continue
        try:
            text = response(loads(raw if type(raw) is bytes else bytes(raw)))
        except Exception:  # whatever it is, the hot loop judges the row
            continue
        if text is not None:
            yield text


def scan_lengths(
    rows: containers.BlockRows, source: str, schema: Any, fast: Any, counter: FastCount, limits: Limits
) -> LengthsResult:
    """Every row's length, in row order: by the layout's fast path where it vouches for the row (as selection's
    hot loop, blocks.py), else by the exact path, which gives the load stage's reasons, rows and lines."""
    count_one, response, loads = counter.count_one, fast.response, orjson.loads
    raws = rows.raws
    if rows.oversized:
        raws = [raw if raw is not None and len(raw) <= limits.record_bytes else None for raw in raws]
    typed = _typed_decoder(fast, raws, limits)
    lengths: array = array("q")
    rejections: list[Rejected] = []
    ids: list[OwnId] = []
    row = misses = 0
    for i, raw in enumerate(raws):
        text = None
        if typed is not None and raw is not None:
            try:
                decoded = typed(raw)
                text = decoded.response
                if text.isspace() or decoded.prompt.isspace():  # `decoded_response`, inline: once a row
                    text = None
            except Exception:  # whatever the strict decoder refuses, the paths below judge exactly
                misses += 1
                if misses > 64 and 4 * misses > i:
                    typed = None  # the block is not shaped like its first record: stop trying
        if text is None and raw is not None:
            data = raw if type(raw) is bytes else bytes(raw)
            if data.count(b"[") + data.count(b"{") <= limits.depth:  # else perhaps too deep: the exact path
                try:
                    record = loads(data)
                    text = response(record)
                    if text is not None and "id" in record:
                        text = None  # its id is checked against the others': the exact path
                except _UNREADABLE:
                    text = None
        if text is not None:
            lengths.append(count_one(text))
            row += 1
            continue
        if rows.blank(i):
            continue
        lengths.append(_exact_length(rows, i, row, limits, source, schema, count_one, rejections, ids))
        row += 1
    scored = Scored(exact_counts=row - len(rejections))
    return LengthsResult(row, rows.lines, rejections, ids, scored, rows.first_line, lengths)


def _exact_length(
    rows: containers.BlockRows, i: int, row: int, limits: Limits, source: str, schema: Any,
    count_one: Callable[[str], int], rejections: list[Rejected], ids: list[OwnId],
) -> int:  # fmt: skip
    """Row `i` by the exact path: its length, or -1 after recording why it is rejected."""
    record, raw = decode_row(rows, i, row, limits, source, rejections)
    if record is None:
        return -1
    try:
        example = schema.parse(record, row, source)
    except RecordError as exc:
        rejections.append((row, rows.line_of(i), str(exc), record))
        return -1
    if has_own_id(record):
        ids.append((row, rows.line_of(i), example.id, raw))
    return sum(count_one(text) for text in example.responses)


def _scan_block_star(args: tuple[Any, ...]) -> BlockResult:
    return scan_block(*args)


class _Merger:
    """Parent side: fix up rows and lines, quarantine, duplicate ids and dedup in file order, the heap."""

    def __init__(self, source: str, plan: Plan, quarantine: Quarantine, report: LoadReport, on_reject=None) -> None:
        self.source, self.plan, self.quarantine, self.report = source, plan, quarantine, report
        self.on_reject = on_reject
        self.heap: TopK[tuple[int | None, Any]] = TopK(plan.k)
        self.seen_ids: set[str] = set()
        self.seen_content: set[bytes] = set()  # only with dedup: O(distinct records) memory, 16 bytes each
        self.dropped: Counter[str] = Counter()
        self.exact_counts = 0
        self.rows = self.lines = 0
        self.lengths: array = array("i")  # plan.lengths_only: 4 bytes a record (8 once one is over 2**31)
        self.own_ids: list[tuple[int, int | None, str]] | None = [] if plan.own_ids else None

    def threshold(self) -> Any:
        return self.heap.threshold()

    def add_block(self, result: BlockResult) -> None:
        base = result.first_line - 1 if result.first_line else self.lines
        rejected = [
            Rejection(self.source, self.rows + row, base + line, reason, record)
            for row, line, reason, record in result.rejections
        ]
        excluded: set[int] = set()
        for row, line, rid, raw in result.ids:
            if rid in self.seen_ids:
                excluded.add(row)
                record = orjson.loads(raw)
                rejected.append(Rejection(self.source, self.rows + row, base + line, f"duplicate id {rid!r}", record))
            else:
                self.seen_ids.add(rid)
                if self.own_ids is not None:
                    self.own_ids.append((self.rows + row, base + line, rid))
        self.report.read += result.rows
        self.report.kept += result.rows - len(rejected)
        for rejection in sorted(rejected, key=lambda r: r.row):
            self.quarantine.add(rejection, self.report)
            if self.on_reject is not None:
                self.on_reject(rejection)
        self.add_scored(result.scored, self.rows, excluded)
        if isinstance(result, LengthsResult):
            self.add_lengths(result.lengths, excluded)
        self.rows += result.rows
        self.lines = base + result.lines

    def add_scored(self, scored: Scored, base_row: int, excluded: set[int] | None = None) -> None:
        excluded = excluded or set()
        self.dropped.update(scored.dropped)
        self.exact_counts += scored.exact_counts
        for row, digest in scored.digests:
            if row in excluded:
                continue
            if digest in self.seen_content:
                excluded.add(row)
                self.dropped["duplicate"] += 1
            else:
                self.seen_content.add(digest)
        if self.plan.lengths_only:
            in_order = sorted((row, length) for _, row, length, _ in scored.candidates if row not in excluded)
            self.add_lengths(array("q", [length for _, length in in_order if length is not None]), set())
            return
        push = self.heap.push
        for key, row, length, payload in scored.candidates:
            if row not in excluded:
                push(key, base_row + row, (length, payload))

    def add_lengths(self, lengths: array, excluded: set[int]) -> None:
        """Append a block's lengths (-1: a rejected row), less those of `excluded` rows."""
        import numpy as np  # here: only `stats` collects lengths

        values = np.frombuffer(lengths, dtype=np.int64).copy() if lengths else np.zeros(0, np.int64)
        if excluded:
            values[sorted(excluded)] = -1
        kept = values[values >= 0]
        if self.lengths.typecode == "i" and kept.size and int(kept.max()) >= 1 << 31:
            self.lengths = array("q", self.lengths)
        self.lengths.frombytes(kept.astype(np.int32 if self.lengths.typecode == "i" else np.int64).tobytes())


def default_workers() -> int:
    """One process per core this process may run on (its CPU affinity: a container's or taskset's share), at
    most 16; `--workers` sets fewer. Not the load average: it lags by a minute, and right after another job
    it chose one worker on an idle machine (1.75x slower than two)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on this platform
        cores = os.cpu_count() or 1
    return max(1, min(cores, 16))


def _start_method() -> str:
    import multiprocessing  # here: a small file never starts workers, and start-up time counts

    return "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


def _pool(workers: int) -> Any:
    import multiprocessing

    return multiprocessing.get_context(_start_method()).Pool(workers)


def scan_jsonl(path: Path, plan: Plan, **options: Any) -> Outcome:
    """`scan_text` on a JSON-lines file opened here."""
    limits = options.pop("limits", None) or Limits(max_record_bytes=options.pop("max_record_bytes"))
    options.pop("max_record_bytes", None)
    with containers.Opened(path, limits) as opened:
        return scan_text(opened, "jsonl", plan, **options)


def scan_text(
    opened: containers.Opened, container: str, plan: Plan, *, format: str | None = None, quarantine: Quarantine,
    workers: int | None = None, on_progress: Progress | None = None, on_reject=None, block_bytes: int | None = None,
) -> Outcome:  # fmt: skip
    """Score every record of a JSON-lines file or JSON array in parallel blocks; see the module docstring."""
    source, limits = opened.name, opened.limits
    layout = Layout(format) if format in formats.SCHEMAS else Layout(None, 1 << 62)
    report = LoadReport(source, layout=layout.name or "", container=container)
    merger = _Merger(source, plan, quarantine, report, on_reject)
    workers = workers or default_workers()
    if block_bytes is None:  # small blocks where a record costs much, so that the work spreads evenly; and
        # under --max-record-bytes, so that a block is cut with at most one limit's worth of carried bytes
        block_bytes = (1 << 20) if plan.by in ("nltk", "tokens") and plan.needs_length else (2 << 20)
        block_bytes = max(64 << 10, min(block_bytes, limits.record_bytes // 2))
    total = os.fstat(opened.fd).st_size
    if total <= 2 * block_bytes:
        workers = 1  # a file of a block or two: starting workers costs more than it saves
    fd = opened.fd if not opened.gzip and _start_method() == "fork" else None
    blocks = (containers.jsonl_blocks(opened, block_bytes) if container == "jsonl"
              else containers.array_blocks(opened, block_bytes))  # fmt: skip
    # A hot-loop block costs about as much as sending it away: this process scans blocks too whenever its
    # helpers have two queued each (with no idle core it then does most of them, at no cost of transfer).
    # Costly blocks (nltk, tokens) all go to `workers` processes, while this one merges in order.
    pool = None
    pending: list[tuple[Any, int]] = []  # (BlockResult, or a worker's AsyncResult of one; disk offset), in order
    limit = workers if plan.prunes else 4 * workers  # the fewer blocks in flight, the fresher the cut-off
    threads = one_thread_each() if workers > 1 else None  # processes share the cores, not tokenizer threads
    try:
        for block in blocks:
            if layout.name is None:
                found = find_layout(block, opened)
                if found is not None:
                    layout = Layout(found[0], block.index, found[1])
                    report.layout = found[0]
            parent_scans = hot_setup(plan, layout) is not None
            helpers = workers - 1 if parent_scans else workers
            local = workers == 1 or helpers == 0 or layout.known_from(block.index) != 0
            if local or (parent_scans and _in_flight(pending) >= 2 * helpers):
                args: tuple[Any, ...] = (source, block, plan, layout, limits, merger.threshold(), opened.fd)
                pending.append((scan_block(*args), block.disk_end))
            else:
                if fd is None and block.data is None and block.kind == "lines":  # no fork: the bytes travel
                    block = dataclasses.replace(block, data=opened.pread(block.start, block.end))
                if block.decoded is not None:  # views into this process's bytes: the worker cuts them anew
                    block = dataclasses.replace(block, decoded=None)
                args = (source, block, plan, layout, limits, merger.threshold(), fd)
                pool = pool or _pool(helpers)
                pending.append((pool.apply_async(_scan_block_star, (args,)), block.disk_end))
            while pending and (len(pending) > limit or _ready(pending[0][0])):
                _drain_one(pending, merger, on_progress, total)
        while pending:
            _drain_one(pending, merger, on_progress, total)
        quarantine.close()
    except BaseException:
        quarantine.abort()
        raise
    finally:
        if pool is not None:
            pool.terminate()
        if workers > 1:
            restore_threads(threads)
    lengths = merger.lengths if plan.lengths_only else None
    return Outcome(merger.heap, report, merger.dropped, merger.exact_counts, layout.name, workers, lengths,
                   sorted(merger.own_ids) if merger.own_ids is not None else None)  # fmt: skip


def _ready(result: Any) -> bool:
    return isinstance(result, BlockResult) or result.ready()


def _in_flight(pending: list[tuple[Any, int]]) -> int:
    return sum(1 for result, _ in pending if not _ready(result))


def _drain_one(pending: list[tuple[Any, int]], merger: _Merger, on_progress: Progress | None, total: int) -> None:
    result, disk_end = pending.pop(0)
    merger.add_block(result if isinstance(result, BlockResult) else result.get())
    if on_progress:
        on_progress(disk_end, total)


def scan_records(
    records: Iterable[Example], plan: Plan, report: LoadReport, *, workers: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> Outcome:  # fmt: skip
    """Score Examples from any iterator (a RecordStream validates and quarantines them) in batches."""
    merger = _Merger(report.source, plan, Quarantine(), report)
    workers = workers or default_workers()
    pool = _pool(workers) if workers > 1 and plan.by == "nltk" and plan.needs_length else None
    count = _parallel_count(pool, workers, plan) if pool is not None else None
    try:
        for batch in _batches(records, BATCH_RECORDS):
            items = [Item(e.row, e.responses, has_input(e), e, e) for e in batch]
            scored = score(items, plan, merger.threshold(), local_top=not plan.dedup, count=count)
            merger.add_scored(scored, 0)
            if on_progress:
                on_progress(len(batch))
    finally:
        if pool is not None:
            pool.terminate()
    lengths = merger.lengths if plan.lengths_only else None
    return Outcome(merger.heap, report, merger.dropped, merger.exact_counts, report.layout, workers if pool else 1,
                   lengths)  # fmt: skip


def _parallel_count(pool: Any, workers: int, plan: Plan) -> Callable[[Sequence[str]], list[int]]:
    def count(texts: Sequence[str]) -> list[int]:
        size = max(16, len(texts) // (4 * workers) + 1)
        chunks = [(plan.by, plan.tokenizer, texts[i : i + size]) for i in range(0, len(texts), size)]
        return [n for counts in pool.map(_count_chunk, chunks) for n in counts]

    return count


def _count_chunk(args: tuple[str, str | None, list[str]]) -> list[int]:
    from longsift.lengths import get_unit

    unit, tokenizer, texts = args
    return get_unit(unit, tokenizer).count(texts)


def _batches(records: Iterable[Example], size: int) -> Iterator[list[Example]]:
    batch: list[Example] = []
    for record in records:
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def materialize(outcome: Outcome, source: str) -> tuple[list[Example], list[int | None]]:
    """The winners as Examples in ascending row order, with their lengths."""
    schema = formats.SCHEMAS.get(outcome.layout) if outcome.layout else None
    examples, lengths = [], []
    for _, row, (length, payload) in outcome.heap.items():
        if isinstance(payload, Example):
            examples.append(payload)
        else:
            assert schema is not None
            examples.append(schema.parse(orjson.loads(payload), row, source))
        lengths.append(length)
    return examples, lengths
