"""Read a source once, score its records, keep the best k: in parallel blocks for JSON lines, streamed otherwise.

JSON lines (plain or gzip) are cut into blocks of whole lines; each worker process parses, validates and
scores a block, and returns only what could still be selected plus every rejection. The parent adds
the row and line counts of earlier blocks (so quarantine messages keep the right file:line), checks
what needs the whole file in order (duplicate ids, `dedup`), and keeps a bounded heap: memory is
O(k + a few blocks), whatever the file size. Only the k survivors become Examples.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from longsift import formats
from longsift.formats import rows as containers
from longsift.formats.load import LoadReport, Quarantine, Rejection
from longsift.formats.schema import RecordError, has_own_id
from longsift.records import Example
from longsift.select.base import TopK
from longsift.select.scoring import Item, Plan, Scored, has_input, score, score_texts

Progress = Callable[[int, int], None]  # (bytes done, bytes in all) of the file on disk
BATCH_RECORDS = 2000


@dataclass(frozen=True)
class Layout:
    """The record layout of a JSON-lines file, fixed by its first record of a known layout."""

    name: str | None
    first_offset: int  # byte offset of that record: earlier JSON objects are of an unknown layout


@dataclass
class BlockResult:
    rows: int
    lines: int
    rejections: list[tuple[int, int, str, Any]]  # (row, line, reason, record) within the block
    ids: list[tuple[int, int, str, bytes]]  # explicit ids: (row, line, id, raw line), checked in file order
    scored: Scored


@dataclass
class Outcome:
    """What a scan leaves: the heap of winners and the counts the summary reports."""

    heap: TopK[tuple[int | None, Any]]
    report: LoadReport
    dropped: Counter[str] = field(default_factory=Counter)
    exact_counts: int = 0
    layout: str | None = None
    workers: int = 1


def sniff_layout(path: Path, layout: str | None) -> Layout:
    if layout in formats.SCHEMAS:
        return Layout(layout, 0)
    offset = 0
    with containers.open_binary(path) as handle:
        for raw in handle:
            try:
                data = orjson.loads(raw)
            except orjson.JSONDecodeError:
                data = None
            if isinstance(data, dict):
                try:
                    return Layout(formats.schema_for(data, str(path)).NAME, offset)
                except formats.UnknownFormatError:
                    pass
            offset += len(raw)
    return Layout(None, offset)


def scan_block(source: str, block: containers.Block, plan: Plan, layout: Layout, max_bytes: int, threshold: Any):
    """Worker: parse, validate and score one block. Rows and lines are local to the block."""
    data = block.read(Path(source))
    schema = formats.SCHEMAS.get(layout.name) if layout.name else None
    fast = getattr(schema, "fast_response", None)
    if fast is not None and block.start >= layout.first_offset and simple_plan(plan):
        return _scan_simple(data, source, schema, fast, plan, max_bytes, threshold)
    items: list[Item] = []
    rejections: list[tuple[int, int, str, Any]] = []
    ids: list[tuple[int, int, str, bytes]] = []
    row, offset = 0, block.start
    for line, raw in enumerate(data.split(b"\n"), 1):
        at, offset = offset, offset + len(raw) + 1
        stripped = raw.strip()
        if not stripped:
            continue
        record = _record(stripped, row, line, max_bytes, rejections)
        if record is None:
            pass
        elif schema is None or at < layout.first_offset:
            rejections.append((row, line, f"unknown record layout with fields {sorted(record)[:12]}", record))
        else:
            try:
                example = schema.parse(record, row, source)
            except RecordError as exc:
                rejections.append((row, line, str(exc), record))
            else:
                if has_own_id(record):
                    ids.append((row, line, example.id, stripped))
                items.append(Item(row, example.responses, has_input(example), example, stripped))
        row += 1
    scored = score(items, plan, threshold, local_top=not ids and not plan.dedup)
    return BlockResult(row, data.count(b"\n"), rejections, ids, scored)


def simple_plan(plan: Plan) -> bool:
    """Records need no Example and the unit is cheap: the hot loop keeps only texts and raw lines."""
    cheap = plan.method.uses_length and not plan.prunes and not plan.bounds_only
    return cheap and not (plan.needs_example or plan.drop_empty_input)


def _record(stripped: bytes, row: int, line: int, max_bytes: int, rejections: list) -> dict[str, Any] | None:
    """The decoded JSON object, or None after recording why it was rejected (the load stage's reasons)."""
    try:
        record = orjson.loads(stripped)
    except orjson.JSONDecodeError:
        record = None
    if type(record) is not dict:
        bad = containers.decode_json_line(stripped, row, line)
        rejections.append((row, line, bad.error or "unreadable record", bad.raw))
        return None
    if len(stripped) > max_bytes:
        reason = f"record is {len(stripped)} bytes, over the limit of {max_bytes} (--max-record-bytes)"
        rejections.append((row, line, reason, None))
        return None
    return record


def _clean_block(data: bytes, fast: Any, max_bytes: int) -> tuple[list[bytes], list[str | None], list[int]] | None:
    """(lines, responses, rows the schema must judge) when every line is a JSON object without id, else None.

    Each record is dropped as soon as its response is taken: holding a block of dicts costs 3x the parse.
    """
    lines = data.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    if any(key in data for key in _ID_KEY) or (len(data) > max_bytes and max(map(len, lines)) > max_bytes):
        return None
    loads = orjson.loads
    try:
        texts = [fast(loads(line)) for line in lines]
    except (orjson.JSONDecodeError, AttributeError):  # a bad or blank line, or JSON that is not an object
        return None
    return lines, texts, [i for i, text in enumerate(texts) if text is None] if None in texts else []


_ID_KEY = (b'"id"', b"\\u0069", b"\\u0064")  # an "id" key, however its letters are escaped


def _scan_simple(data: bytes, source: str, schema: Any, fast: Any, plan: Plan, max_bytes: int, threshold: Any):
    """The hot loop for single-response layouts (Alpaca): per row only orjson, the schema's checks, a list append."""
    clean = _clean_block(data, fast, max_bytes)
    if clean is not None:  # the common case: every line a JSON object, no blank lines, no ids
        lines, texts, judge = clean
        rows, rejections = list(range(len(lines))), []
        if judge:  # records the bulk check did not vouch for: let the schema decide
            for i in judge:
                record = orjson.loads(lines[i])
                try:
                    texts[i] = schema.parse(record, i, source).response
                except RecordError as exc:
                    rejections.append((i, i + 1, str(exc), record))
            if rejections:
                bad = {r[0] for r in rejections}
                rows = [i for i in rows if i not in bad]
                texts, lines = [texts[i] for i in rows], [lines[i] for i in rows]
        scored = score_texts(rows, texts, lines, plan, threshold, local_top=True)  # type: ignore[arg-type]
        return BlockResult(len(lines) + len(rejections), data.count(b"\n"), rejections, [], scored)
    rows = []
    texts: list[str] = []
    raws: list[bytes] = []
    rejections: list[tuple[int, int, str, Any]] = []
    ids: list[tuple[int, int, str, bytes]] = []
    loads, decode_error, row = orjson.loads, orjson.JSONDecodeError, 0
    for line, raw in enumerate(data.split(b"\n"), 1):
        try:
            record = loads(raw)
        except decode_error:
            record = None
        if type(record) is not dict or len(raw) > max_bytes:
            stripped = raw.strip()
            if not stripped:
                continue  # a blank line is not a row
            record = _record(stripped, row, line, max_bytes, rejections)
            if record is None:
                row += 1
                continue
        text = fast(record)
        if text is None:
            try:
                text = schema.parse(record, row, source).response
            except RecordError as exc:
                rejections.append((row, line, str(exc), record))
                row += 1
                continue
        rid = record.get("id")
        if rid is not None and rid != "":
            ids.append((row, line, str(rid), raw.strip()))
        rows.append(row)
        texts.append(text)
        raws.append(raw)
        row += 1
    scored = score_texts(rows, texts, raws, plan, threshold, local_top=not ids)
    return BlockResult(row, data.count(b"\n"), rejections, ids, scored)


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

    def threshold(self) -> Any:
        return self.heap.threshold()

    def add_block(self, result: BlockResult) -> None:
        rejected = [
            Rejection(self.source, self.rows + row, self.lines + line, reason, record)
            for row, line, reason, record in result.rejections
        ]
        excluded: set[int] = set()
        for row, line, rid, raw in result.ids:
            if rid in self.seen_ids:
                excluded.add(row)
                record = orjson.loads(raw)
                rejected.append(
                    Rejection(self.source, self.rows + row, self.lines + line, f"duplicate id {rid!r}", record)
                )
            else:
                self.seen_ids.add(rid)
        self.report.read += result.rows
        self.report.kept += result.rows - len(rejected)
        for rejection in sorted(rejected, key=lambda r: r.row):
            self.quarantine.add(rejection, self.report)
            if self.on_reject is not None:
                self.on_reject(rejection)
        self.add_scored(result.scored, self.rows, excluded)
        self.rows += result.rows
        self.lines += result.lines

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
        push = self.heap.push
        for key, row, length, payload in scored.candidates:
            if row not in excluded:
                push(key, base_row + row, (length, payload))


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 16))


def _pool(workers: int) -> Any:
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    return multiprocessing.get_context(method).Pool(workers)


def scan_jsonl(
    path: Path, plan: Plan, *, format: str | None = None, quarantine: Quarantine, workers: int | None = None,
    max_record_bytes: int, on_progress: Progress | None = None, on_reject=None, block_bytes: int | None = None,
) -> Outcome:  # fmt: skip
    """Score every record of a JSON-lines file in parallel blocks; see the module docstring."""
    source = str(path)
    layout = sniff_layout(path, format)
    report = LoadReport(source, layout=layout.name or "", container="jsonl")
    merger = _Merger(source, plan, quarantine, report, on_reject)
    workers = workers or default_workers()
    if block_bytes is None:  # small blocks where a record costs much, so that the work spreads evenly
        block_bytes = (1 << 20) if plan.by in ("nltk", "tokens") and plan.needs_length else (4 << 20)
    total = path.stat().st_size
    pool = None
    pending: list[tuple[Any, int]] = []
    try:
        for block in containers.iter_jsonl_blocks(path, block_bytes):
            args = (source, block, plan, layout, max_record_bytes, merger.threshold())
            if workers == 1:
                merger.add_block(scan_block(*args))
                if on_progress:
                    on_progress(block.disk_end, total)
                continue
            if pool is None:
                pool = _pool(workers)
            pending.append((pool.apply_async(_scan_block_star, (args,)), block.disk_end))
            while len(pending) > (workers if plan.prunes else 2 * workers):
                _drain_one(pending, merger, on_progress, total)
        while pending:
            _drain_one(pending, merger, on_progress, total)
    finally:
        quarantine.close()
        if pool is not None:
            pool.terminate()
    return Outcome(merger.heap, report, merger.dropped, merger.exact_counts, layout.name, workers)


def _drain_one(pending: list[tuple[Any, int]], merger: _Merger, on_progress: Progress | None, total: int) -> None:
    result, disk_end = pending.pop(0)
    merger.add_block(result.get())
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
    return Outcome(merger.heap, report, merger.dropped, merger.exact_counts, report.layout, workers if pool else 1)


def _parallel_count(pool: Any, workers: int, plan: Plan) -> Callable[[list[str]], list[int]]:
    def count(texts: list[str]) -> list[int]:
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
