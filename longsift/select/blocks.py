"""One block of JSON lines, scanned: the exact per-line path and the hot loop for one-response layouts.

The hot loop (Alpaca scored in chars or words) costs per line one strict typed decode (msgspec, checks in C,
no dict built; see longsift/formats/strict.py) and one comparison with the block's running cut-off: a record
that cannot enter the top k is dropped at once, and only the block's (at most k) best keep their raw line.
Holding every record, text or line of a block costs as much again as the parse itself, so nothing else is
kept. A line the strict decoder refuses is tried by orjson and the schema's `fast_response`; one neither
vouches for (bad JSON, blank lines, records the schema must judge, records with their own id) takes the
exact path after the loop, which gives the same reasons, rows and lines as the load stage."""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from longsift.formats import rows as containers
from longsift.formats.schema import RecordError, has_own_id
from longsift.select.scoring import Plan, Scored

Rejected = tuple[int, int, str, Any]  # (row, line, reason, record) within the block
OwnId = tuple[int, int, str, bytes]  # (row, line, id, raw line) of a record that carries its own id


@dataclass
class BlockResult:
    rows: int
    lines: int
    rejections: list[Rejected]
    ids: list[OwnId]  # explicit ids, checked for duplicates by the parent in file order
    scored: Scored


def decode_record(stripped: bytes, row: int, line: int, max_bytes: int, rejections: list) -> dict[str, Any] | None:
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


def hot_loop_applies(plan: Plan, fast: Any, count_one: Any) -> bool:
    """The plan needs only one length per record, from a cheap unit, and keeps k > 0 of them."""
    simple = plan.method.uses_length and not plan.prunes and not plan.bounds_only
    plain = not (plan.needs_example or plan.drop_empty_input or plan.floor is not None)
    return simple and plain and fast is not None and count_one is not None and bool(plan.k)


def scan_hot(
    data: bytes, source: str, schema: Any, plan: Plan, count_one: Callable[[str], int], threshold: int | None,
    max_bytes: int, chars_per_unit: int = 0,
) -> BlockResult | None:  # fmt: skip
    """The block scored by the hot loop, or None when a line is over `max_bytes` (then the exact path runs)."""
    lines = data.split(b"\n")
    line_count = len(lines) - 1  # newlines in the block, as the parent counts lines
    if not lines[-1]:
        lines.pop()
    if len(data) > max_bytes and max(map(len, lines), default=0) > max_bytes:
        return None
    assert plan.k is not None
    ranged = plan.min_length is not None or plan.max_length is not None
    low = plan.min_length if plan.min_length is not None else 0
    high = plan.max_length if plan.max_length is not None else float("inf")
    heap, odd, out_of_range = _hot_loop(lines, schema, count_one, plan.k, threshold, ranged, low, high,
                                        plan.keep_payload, chars_per_unit)  # fmt: skip
    rejections: list[Rejected] = []
    ids: list[OwnId] = []
    extra: list[tuple[int, int, Any]] = []  # valid records with their own id: (length, index, payload)
    blanks: list[int] = []
    for i in odd:  # in line order, so `blanks` holds every blank line before i
        stripped = lines[i].strip()
        if not stripped:
            blanks.append(i)
            continue
        row = i - len(blanks)
        record = decode_record(stripped, row, i + 1, max_bytes, rejections)
        if record is None:
            continue
        try:
            example = schema.parse(record, row, source)
        except RecordError as exc:
            rejections.append((row, i + 1, str(exc), record))
            continue
        own_id = has_own_id(record)
        if own_id:
            ids.append((row, i + 1, example.id, stripped))
        n = count_one(example.response)
        payload = lines[i] if plan.keep_payload else None
        if ranged and not low <= n <= high:
            out_of_range += 1
        elif threshold is not None and n <= threshold:
            pass  # ties with the k-th selected so far lose to its earlier row
        elif own_id:  # a later duplicate check may drop it: it must not narrow the block's cut-off
            extra.append((n, i, payload))
        else:
            _offer(heap, plan.k, (n, -i, payload))
    rows = len(lines) - len(blanks)
    scored = Scored(exact_counts=rows - len(rejections))
    if ranged:
        scored.dropped = Counter({"out of length range": out_of_range})
    entries = [(n, -neg, payload) for n, neg, payload in heap] + extra
    scored.candidates = [(n, i - bisect_left(blanks, i), n, payload) for n, i, payload in entries]
    return BlockResult(rows, line_count, rejections, ids, scored)


def _offer(heap: list, k: int, entry: tuple[int, int, Any]) -> None:
    if len(heap) < k:
        heapq.heappush(heap, entry)
    elif entry[:2] > heap[0][:2]:
        heapq.heapreplace(heap, entry)


def _typed_decoder(schema: Any, lines: list[bytes]) -> Callable[[bytes], Any] | None:
    """The schema's strict decoder, shaped like the block's first record that the fast checks accept."""
    maker = getattr(schema, "response_decoder", None)
    if maker is None:
        return None
    for raw in lines[:16]:
        try:
            record = orjson.loads(raw)
            if schema.fast_response(record) is not None and "id" not in record:
                return maker(record)
        except (orjson.JSONDecodeError, AttributeError):
            pass  # not a record: try the next line
        except (RecursionError, TypeError):  # a sample too deep or odd to type: orjson does the block
            return None
    return None


def _hot_loop(
    lines: list[bytes], schema: Any, count_one: Callable[[str], int], k: int, threshold: int | None,
    ranged: bool, low: float, high: float, keep: bool, chars_per_unit: int,
) -> tuple[list[tuple[int, int, Any]], list[int], int]:  # fmt: skip
    """(heap of (length, -index, raw line), indices of lines for the exact path, records out of range).

    Each line is tried by the strict typed decoder first, then by orjson and `fast_response`; a line
    neither vouches for goes to the exact path. `chars_per_unit` > 0: a text of n characters counts at
    most ceil(n / chars_per_unit), so one too short to pass the cut-off is not counted at all.
    """
    heap: list[tuple[int, int, Any]] = []
    odd: list[int] = []
    out_of_range = misses = 0
    cut = -1 if threshold is None else threshold  # a record must be longer to be selectable
    typed, fast = _typed_decoder(schema, lines), schema.fast_response
    loads, push, replace = orjson.loads, heapq.heappush, heapq.heapreplace
    unreadable = (orjson.JSONDecodeError, AttributeError)  # bad JSON, or JSON that is not an object
    for i, raw in enumerate(lines):
        text = None
        if typed is not None:
            try:
                text = typed(raw).response
            except Exception:  # whatever the strict decoder refuses, the paths below judge exactly
                misses += 1
                if misses > 64 and 4 * misses > i:
                    typed = None  # the block is not shaped like its first record: stop trying
        if text is None:
            try:
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
