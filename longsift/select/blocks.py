"""One block of rows, scanned: the exact per-row path and the hot loop for one-response layouts.

A block is a run of JSON lines or of a JSON array's elements (longsift/formats/rows.py cuts both and says what
a row is); the rows come here as raw bytes (`BlockRows`) and the rules of the load stage decide each one.

The hot loop (Alpaca scored in chars or words) costs per row one strict typed decode (msgspec, checks in C,
no dict built; see longsift/formats/strict.py) and one comparison with the block's running cut-off: a record
that cannot enter the top k is dropped at once, and only the block's (at most k) best keep their raw bytes.
Holding every record, text or line of a block costs as much again as the parse itself, so nothing else is
kept. A row the strict decoder refuses is tried by orjson and the layout's `FAST.response`; one neither
vouches for (bad JSON, blank lines, records the schema must judge, records with their own id, many
brackets) takes the exact path after the loop, which gives the same reasons, rows and lines as the load stage."""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from longsift.formats import rows as containers
from longsift.formats.rows import BlockRows, Limits
from longsift.formats.schema import FastPath, RecordError, Schema, has_own_id
from longsift.lengths import FastCount
from longsift.select.scoring import Plan, Scored

Rejected = tuple[int, int, str, Any]  # (row, line, reason, record) within the block
OwnId = tuple[int, int, str, bytes]  # (row, line, id, raw bytes) of a record that carries its own id


@dataclass
class BlockResult:
    rows: int
    lines: int  # newlines in the block
    rejections: list[Rejected]  # lines relative to `first_line` when known, else to the lines before the block
    ids: list[OwnId]  # explicit ids, checked for duplicates by the parent in file order
    scored: Scored
    first_line: int = 0


def decode_row(
    rows: BlockRows, i: int, row: int, limits: Limits, source: str, rejections: list[Rejected]
) -> tuple[dict[str, Any] | None, bytes]:
    """Row `i` of the block decoded by the load stage's one rule set (`rows.decide`), or None after
    recording why not."""
    found = containers.decide(rows, i, row, limits, source)
    if found.data is None:
        rejections.append((row, found.line or 0, found.error or "unreadable record", found.raw))
        return None, b""
    return found.data, rows.raw(i) or b""


def hot_loop_applies(plan: Plan) -> bool:
    """The plan needs only one length per record and keeps k > 0 of them (the unit and the layout must also
    have their fast paths: `Unit.fast`, `Schema.FAST`)."""
    simple = plan.method.uses_length and not plan.prunes and not plan.bounds_only
    plain = not (plan.needs_example or plan.drop_empty_input or plan.floor is not None)
    return simple and plain and bool(plan.k)


def scan_hot(
    rows: BlockRows, source: str, schema: Schema, fast: FastPath, plan: Plan, counter: FastCount,
    threshold: int | None, limits: Limits,
) -> BlockResult:  # fmt: skip
    """The block scored by the hot loop (`fast`: the layout's shortcut, `counter`: the unit's), then its odd
    rows by the exact path (`schema.parse`)."""
    assert plan.k is not None
    count_one = counter.count_one
    ranged = plan.min_length is not None or plan.max_length is not None
    low = plan.min_length if plan.min_length is not None else 0
    high = plan.max_length if plan.max_length is not None else float("inf")
    raws = rows.raws
    if rows.oversized:
        raws = [raw if raw is not None and len(raw) <= limits.record_bytes else None for raw in raws]
    heap, odd, out_of_range = _hot_loop(raws, fast, count_one, plan.k, threshold, ranged, low, high,
                                        plan.keep_payload, counter.chars_per_unit, limits)  # fmt: skip
    rejections: list[Rejected] = []
    ids: list[OwnId] = []
    extra: list[tuple[int, int, Any]] = []  # valid records with their own id: (length, index, payload)
    blanks: list[int] = []
    for i in odd:  # in row order, so `blanks` holds every blank line before i
        if rows.blank(i):
            blanks.append(i)
            continue
        row = i - len(blanks)
        record, raw = decode_row(rows, i, row, limits, source, rejections)
        if record is None:
            continue
        try:
            example = schema.parse(record, row, source)
        except RecordError as exc:
            rejections.append((row, rows.line_of(i), str(exc), record))
            continue
        own_id = has_own_id(record)
        if own_id:
            ids.append((row, rows.line_of(i), example.id, raw))
        n = count_one(example.response)
        payload = raw if plan.keep_payload else None
        if ranged and not low <= n <= high:
            out_of_range += 1
        elif threshold is not None and n <= threshold:
            pass  # ties with the k-th selected so far lose to its earlier row
        elif own_id:  # a later duplicate check may drop it: it must not narrow the block's cut-off
            extra.append((n, i, payload))
        else:
            _offer(heap, plan.k, (n, -i, payload))
    count = len(rows.raws) - len(blanks)
    scored = Scored(exact_counts=count - len(rejections))
    if ranged:
        scored.dropped = Counter({"out of length range": out_of_range})
    entries = [(n, -neg, payload) for n, neg, payload in heap] + extra
    scored.candidates = [(n, i - bisect_left(blanks, i), n, _owned(payload)) for n, i, payload in entries]
    return BlockResult(count, rows.lines, rejections, ids, scored, rows.first_line)


def _owned(payload: Any) -> Any:
    """A kept row as bytes of its own (a msgspec Raw is a view that would pin its whole block in memory)."""
    return payload if payload is None or type(payload) is bytes else bytes(payload)


def _offer(heap: list, k: int, entry: tuple[int, int, Any]) -> None:
    if len(heap) < k:
        heapq.heappush(heap, entry)
    elif entry[:2] > heap[0][:2]:
        heapq.heapreplace(heap, entry)


def _typed_decoder(fast: FastPath, lines: list[Any], limits: Limits) -> Callable[[bytes], Any] | None:
    """The layout's strict decoder, shaped like the block's first record that the fast checks accept."""
    maker = fast.decoder
    if maker is None:
        return None
    for raw in lines[:16]:
        if raw is None:
            continue
        raw = bytes(raw)
        if len(raw) > limits.record_bytes or raw.count(b"[") + raw.count(b"{") > limits.depth:
            continue  # the exact path judges it; a decoder typed from it would accept rows as deep
        try:
            record = orjson.loads(raw)
            if fast.response(record) is not None and "id" not in record:
                return maker(record)
        except (orjson.JSONDecodeError, AttributeError):
            pass  # not a record: try the next line
        except (RecursionError, TypeError):  # a sample too deep or odd to type: orjson does the block
            return None
    return None


def _hot_loop(
    lines: list[Any], fast_path: FastPath, count_one: Callable[[str], int], k: int, threshold: int | None,
    ranged: bool, low: float, high: float, keep: bool, chars_per_unit: int, limits: Limits,
) -> tuple[list[tuple[int, int, Any]], list[int], int]:  # fmt: skip
    """(heap of (length, -index, raw row), indices of rows for the exact path, records out of range).

    Each row is tried by the strict typed decoder first, then by orjson and the layout's `response`; a row
    neither vouches for goes to the exact path. `chars_per_unit` > 0: a text of n characters counts at
    most ceil(n / chars_per_unit), so one too short to pass the cut-off is not counted at all.
    Rows are bytes, msgspec Raw views (array elements) or None (over the size limit: the exact path says so).
    """
    heap: list[tuple[int, int, Any]] = []
    odd: list[int] = []
    out_of_range = misses = 0
    cut = -1 if threshold is None else threshold  # a record must be longer to be selectable
    max_brackets = limits.depth
    typed, fast = _typed_decoder(fast_path, lines, limits), fast_path.response
    loads, push, replace = orjson.loads, heapq.heappush, heapq.heapreplace
    unreadable = (orjson.JSONDecodeError, AttributeError, TypeError)  # bad JSON, not an object, no row
    for i, raw in enumerate(lines):
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
        if text is None:
            if type(raw) is not bytes and raw is not None:
                raw = bytes(raw)
            try:
                if raw.count(b"[") + raw.count(b"{") > max_brackets:
                    odd.append(i)  # perhaps too deep: the exact path measures it
                    continue
                record = loads(raw)
                text = fast(record)
            except unreadable:
                odd.append(i)
                continue
            if text is None or "id" in record:
                odd.append(i)
                continue
        if ranged:
            n = count_one(text)
            if not low <= n <= high:
                out_of_range += 1
                continue
        elif chars_per_unit and len(text) <= chars_per_unit * cut:
            continue
        else:
            n = count_one(text)
        if n > cut:  # rows rise through the block: an equal length never beats the heap's smallest
            if len(heap) < k:
                push(heap, (n, -i, raw if keep else None))
                if len(heap) == k:
                    cut = max(cut, heap[0][0])
            else:
                replace(heap, (n, -i, raw if keep else None))
                cut = max(cut, heap[0][0])
    return heap, odd, out_of_range
