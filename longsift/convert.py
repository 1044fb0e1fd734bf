"""`convert` of a JSON-lines file or JSON array in parallel blocks, with exactly the sequential path's bytes.

The input is cut into blocks of whole rows (longsift/formats/rows.py, as every reader cuts it). The parent counts
each block's rows and lines before sending it away (a newline count and a blank-line test, no decoding), so a
worker knows the row and file:line of its first row and writes ids, rows and quarantine entries exactly as the
load stage would (`formats.load.judge` decides each row). Workers return a block's serialized output and its
rejections; the parent writes them in order through one atomic output, hashing the bytes as they go (the
manifest then needs no second read of the output).

What needs the whole file in order stays exact by falling back to the sequential path (`None` is returned
before anything is in place): a duplicate id, a record that cannot be written, a worker's error, no record at
all. They are rare, and the sequential path says exactly what today's does.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from longsift import formats
from longsift.formats import rows as containers
from longsift.formats.alpaca import _dumps, fast_response
from longsift.formats.load import LoadReport, Quarantine, Rejection, judge
from longsift.formats.rows import Block, Limits
from longsift.formats.schema import has_own_id
from longsift.outputs import Writeback, atomic_output
from longsift.records import Example

BLOCK_BYTES = 2 << 20
ARRAY_FORMATS = ("alpaca", "fastchat", "sharegpt")  # JSON arrays, indent 4 (formats.alpaca.write_json_array)
FORMATS = ("messages", *ARRAY_FORMATS)
_SPACE = frozenset(b" \t\n\r\x0b\x0c")  # what `bytes.strip()` strips (a blank line starts with one)


class Fallback(Exception):
    """The parallel path cannot promise the sequential path's result here: run that instead."""


@dataclass(frozen=True)
class Job:
    """What every block of one conversion shares."""

    source: str
    fmt: str
    limits: Limits
    fd: int | None  # the input's handle, inherited by forked workers (None: blocks carry their bytes)
    out_fd: int | None = None  # the staged output's handle: workers write JSON lines into it themselves


@dataclass
class Done:
    """A converted block: its output bytes (JSON-array items joined, without the array's brackets)."""

    out: bytes
    written: int
    read: int
    layout: str | None
    after: tuple[int, int] = (0, 0)  # rows and lines of the file up to the block's end
    at: tuple[int, int] | None = None  # (offset, size) of `out` when the worker wrote it into the output itself
    rejections: list[Rejection] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)  # the file's own ids of the written records, in order


def applies(source: str, fmt: str) -> bool:
    """A JSON-lines or JSON-array file (plain or gzip) to a format written here, on a system that forks."""
    import multiprocessing

    path = Path(source)
    forks = "fork" in multiprocessing.get_all_start_methods()
    return forks and fmt in FORMATS and path.is_file() and containers.inner_suffix(path) != ".parquet"


def convert(
    source: str, output: Path, fmt: str, input_format: str | None, limits: Limits, quarantine: Quarantine,
    workers: int | None = None, on_reject: Callable[[Rejection], None] | None = None,
    block_bytes: int = BLOCK_BYTES,
) -> tuple[int, LoadReport, str] | None:  # fmt: skip
    """(records written, the load report, the output's sha256), or None: run the sequential path."""
    with containers.Opened(Path(source), limits) as opened:
        container = formats.container_of(source, input_format, opened)
        if container not in ("jsonl", "json"):
            return None
        layout = input_format if input_format in formats.SCHEMAS else None
        report = LoadReport(source, layout=layout or "", container=container)
        if opened.identity[2] <= 2 * block_bytes:
            workers = 1  # a block or two: starting workers costs more than it saves
        workers = workers or _default_workers()
        job = Job(opened.name, fmt, limits, opened.fd if not opened.gzip else None)
        try:
            with atomic_output(output) as handle:
                out = Output(handle)
                written = _run(job, opened, container, layout, workers, block_bytes, report, quarantine, out)
                if written == 0:
                    raise Fallback("no record: the sequential path explains why")
                quarantine.close()
        except Fallback:
            quarantine.abort()
            return None
        except BaseException:
            quarantine.abort()
            raise
    if on_reject is not None:
        for rejection in report.rejections:
            on_reject(rejection)
    return written, report, out.digest.hexdigest()


class Output:
    """The staged output, hashed in order as it grows (the manifest then reads no output again)."""

    def __init__(self, handle: Any) -> None:
        self.handle, self.fd, self.size, self.digest = handle, handle.fileno(), 0, hashlib.sha256()
        self.writeback = Writeback(self.fd)

    def write(self, piece: bytes) -> None:
        self.handle.write(piece)
        self.grew(piece)

    def written_at(self, start: int, size: int) -> None:
        """A worker wrote `size` bytes at `start` (where this output ends): hash them from the page cache."""
        assert start == self.size, (start, self.size)
        while size:  # in pieces: memory stays one piece, and the hash needs no more at once
            piece = os.pread(self.fd, min(size, 8 << 20), start)
            if not piece:
                raise OSError(f"the output ends at {start}, before the bytes a worker wrote there")
            self.grew(piece)
            start, size = start + len(piece), size - len(piece)

    def grew(self, piece: bytes) -> None:
        self.digest.update(piece)
        self.size += len(piece)
        self.writeback.wrote(len(piece))

    def end(self) -> int:
        """Where the next bytes go, once what this process wrote is in the file (workers write past it)."""
        self.handle.flush()
        return self.size


def _run(
    job: Job, opened: containers.Opened, container: str, layout: str | None, workers: int, block_bytes: int,
    report: LoadReport, quarantine: Quarantine, out: Output,
) -> int:  # fmt: skip
    array = job.fmt in ARRAY_FORMATS
    blocks = (containers.jsonl_blocks(opened, block_bytes) if container == "jsonl"
              else containers.array_blocks(opened, block_bytes))  # fmt: skip
    seen: set[str] = set()
    written = 0
    pool = None
    pending: deque[Any] = deque()

    def take(done: Done) -> None:
        nonlocal written
        for rid in done.ids:
            if rid in seen:
                raise Fallback(f"duplicate id {rid!r}")
            seen.add(rid)
        report.read += done.read
        report.kept += done.written
        for rejection in done.rejections:
            quarantine.add(rejection, report)
        if done.at is not None:
            out.written_at(*done.at)
        elif done.written:
            out.write((b",\n    " if written else b"[\n    ") + done.out if array else done.out)
        written += done.written

    global _RELAYS
    base: tuple[int, int] | None = (0, 0)  # rows and lines before the next block, while the parent knows them
    start: int | None = None  # where the next block's output goes, while the parent knows it
    try:
        for seq, block in enumerate(blocks):
            if layout is None or workers == 1:  # the layout is fixed by the first record of a known one
                assert base is not None
                done = convert_block(job, block, layout, base, seq)
                layout, base = layout or done.layout, done.after
                if done.layout and not report.layout:
                    report.layout = done.layout
                pending.append(done)
            else:
                if job.fd is None and block.data is None and block.kind == "lines":
                    block = dataclasses.replace(block, data=opened.pread(block.start, block.end))
                block = dataclasses.replace(block, decoded=None)  # views into this process's bytes
                if pool is None:
                    _RELAYS = Relay(8 * workers + 16, 2), Relay(8 * workers + 16, 1)  # before the fork: inherited
                    pool = _pool(workers)
                    if not array:  # JSON lines: workers write their blocks into the output themselves
                        job, start = dataclasses.replace(job, out_fd=out.fd), out.end()
                pending.append(pool.apply_async(_convert_star, ((job, block, layout, base, seq, start),)))
                base = start = None  # the worker of the block before says, through the relays
            while pending and (len(pending) > 4 * workers or _ready(pending[0])):
                take(_result(pending.popleft()))
        while pending:
            take(_result(pending.popleft()))
    finally:
        _RELAYS = None
        if pool is not None:
            pool.terminate()
    if array:
        out.write(b"\n]" if written else b"[]")
    return written


class Relay:
    """Totals up to each block's end, handed from the worker of one block to the worker of the next (shared
    memory under one condition variable): the rows and lines before a block (a worker counts its own block,
    which it splits anyway, so the parent reads and counts no input byte), and where its output goes in the
    file (JSON lines: each worker writes its block there itself, so no output byte passes through a pipe).

    A ring of slots (block seq mod `size`: more than the blocks in flight); a worker that fails before passing
    its totals on marks its slot failed, and those waiting on it fall back too."""

    def __init__(self, size: int, width: int) -> None:
        import multiprocessing

        context = multiprocessing.get_context("fork")
        self.size, self.width, self.cond = size, width + 1, context.Condition()
        self.slots = context.RawArray("q", self.width * size)  # per slot: seq + 1 (negative: failed), totals

    def wait(self, seq: int) -> tuple[int, ...]:
        at = self.width * (seq % self.size)
        with self.cond:
            while self.slots[at] not in (seq + 1, -(seq + 1)):
                self.cond.wait()
            if self.slots[at] < 0:
                raise Fallback(f"the worker of block {seq} failed")
            return tuple(self.slots[at + 1 : at + self.width])

    def put(self, seq: int, totals: tuple[int, ...] | None) -> None:
        at = self.width * (seq % self.size)
        with self.cond:
            if totals is not None:
                self.slots[at + 1 : at + self.width] = totals
            self.slots[at] = seq + 1 if totals is not None else -(seq + 1)
            self.cond.notify_all()


_RELAYS: tuple[Relay, Relay] | None = None  # (rows and lines, output bytes) while a worker pool runs (forked)


def _after(rows: containers.BlockRows, block: Block, base: tuple[int, int]) -> tuple[int, int]:
    """Rows and lines up to the block's end (rows as `rows.iter_text` numbers them: blank lines are none)."""
    count = len(rows.raws)
    if block.kind == "lines":
        # `rows.blank` is the rule; a line that starts with other than a space is never blank, so most skip it
        count -= sum(1 for i, raw in enumerate(rows.raws) if (not raw or raw[0] in _SPACE) and rows.blank(i))
    base_line = block.first_line - 1 if block.first_line else base[1]
    return base[0] + count, base_line + rows.lines


def convert_block(
    job: Job, block: Block, layout: str | None, base: tuple[int, int] | None, seq: int, start: int | None = None,
) -> Done:  # fmt: skip
    """One block's rows, decided and written as the sequential path does (see the module docstring); `base`:
    the rows and lines before it, or None: the relay has them from the worker of block `seq - 1`; `start`:
    where its output goes when `job.out_fd` is set (None: the relay says)."""
    data = None
    if block.data is None and block.kind == "lines":
        assert job.fd is not None
        data = os.pread(job.fd, block.end - block.start, block.start)
    rows = containers.rows_of_block(block, data, job.limits.record_bytes)
    rows.first_line = block.first_line
    if base is None:
        assert _RELAYS is not None
        rows_before, lines_before = _RELAYS[0].wait(seq - 1)
        base = rows_before, lines_before
    after = _after(rows, block, base)
    if _RELAYS is not None:
        _RELAYS[0].put(seq, after)
    base_row, base_line = base[0], block.first_line - 1 if block.first_line else base[1]
    fixed = formats.SCHEMAS.get(layout) if layout else None
    done = Done(b"", 0, 0, layout, after)

    def pick(record: dict[str, Any]) -> Callable[..., Example]:
        nonlocal fixed
        if fixed is None:
            fixed = formats.schema_for(record, job.source)
            done.layout = fixed.NAME
        return fixed.parse

    serialize = _serializer(job.fmt)
    hot = _alpaca_line(job, rows) if layout == "alpaca" and job.fmt == "messages" else None
    pieces: list[bytes] = []
    row = base_row
    unfinished = len(rows.raws) - 1 if rows.truncated else -1  # a truncated array's tail: the exact path's
    for i, raw in enumerate(rows.raws):
        if hot is not None and i != unfinished:  # before the blank test: a line that decodes is not blank
            line = hot(raw, row)
            if line is not None:
                pieces.append(line)
                row += 1
                continue
        if rows.blank(i):
            continue
        found = containers.decide(rows, i, row, job.limits, job.source)
        row += 1
        example, reason, kept = judge(found, pick, job.limits.record_bytes, job.source, lambda: fixed is not None)
        if example is None:
            done.rejections.append(Rejection(job.source, found.row, base_line + (found.line or 0), reason, kept))
            continue
        if has_own_id(found.data or {}):
            done.ids.append(example.id)
        pieces.append(serialize(example))
    done.read, done.written = row - base_row, len(pieces)
    done.out = (b",\n    " if job.fmt in ARRAY_FORMATS else b"").join(pieces)
    if job.out_fd is not None:
        done.at, done.out = _write_at(job.out_fd, done.out, seq, start), b""
    return done


def _write_at(fd: int, data: bytes, seq: int, start: int | None) -> tuple[int, int]:
    """Write a block's output where the block before ends, after saying where it ends (so the next block's
    worker writes at once): (offset, size)."""
    assert _RELAYS is not None
    if start is None:
        (start,) = _RELAYS[1].wait(seq - 1)
    _RELAYS[1].put(seq, (start + len(data),))
    view, at = memoryview(data), start
    while view:
        wrote = os.pwrite(fd, view, at)
        view, at = view[wrote:], at + wrote
    return start, len(data)


def _alpaca_line(job: Job, rows: containers.BlockRows) -> Callable[[Any, int], bytes | None]:
    """The messages line of an Alpaca row that the exact path would certainly accept, else None (then the exact
    path judges it): the same checks (`alpaca.fast_response` and the record limits) and the same dict
    as `alpaca.parse` + `messages.write` give; rows with their own id always take the exact path (duplicates)."""
    limit, depth, source, in_array = job.limits.record_bytes, job.limits.depth, job.source, rows.in_array
    sized = rows.oversized  # False: the whole block is within the record limit, so every row is
    loads, dumps, newline, error = orjson.loads, orjson.dumps, orjson.OPT_APPEND_NEWLINE, orjson.JSONDecodeError

    def line(raw: Any, row: int) -> bytes | None:
        if raw is None:
            return None
        raw = raw if type(raw) is bytes else bytes(raw)
        if sized and (len(raw) if in_array else len(raw) - raw.endswith(b"\r")) > limit:
            return None
        try:
            data = loads(raw)
        except error:
            return None
        if type(data) is not dict or "id" in data:
            return None
        own = len(data) > 2 + ("input" in data)  # fields of its own, beside instruction, input and output
        if (depth < 2 or own and not _two_levels(data)) and raw.count(b"[") + raw.count(b"{") > depth:
            return None  # maybe nested too deep: the exact path measures it (brackets bound the nesting)
        output = fast_response(data)
        if output is None:
            return None
        instruction, given = data["instruction"], data.get("input")
        text = given or ""
        metadata = {"instruction": instruction, "input": text}
        if own:  # kept after these two, in the row's order
            metadata.update(data)  # the two keys keep their places; "output" is dropped below
            del metadata["output"]
            metadata["input"] = text  # an "input": null is written as ""
        turns = [{"role": "user", "content": f"{instruction}\n\n{text}" if text else instruction},
                 {"role": "assistant", "content": output}]  # fmt: skip
        record = {"id": str(row), "messages": turns, "source": source, "row": row, "metadata": metadata}
        try:
            return dumps(record, option=newline)
        except TypeError:  # a value orjson cannot write: the exact path's writer says which
            return None

    return line


def _two_levels(data: dict[str, Any]) -> bool:
    """True when no value of the record nests deeper than a list of scalars: the record is at most two levels
    deep, so the depth limit is checked without counting its bytes' brackets (a slow per-byte pass)."""
    for value in data.values():
        kind = type(value)
        if kind is dict:
            return False
        if kind is list:
            for item in value:
                if type(item) is list or type(item) is dict:
                    return False
    return True


def _serializer(fmt: str) -> Callable[[Example], bytes]:
    """One record's bytes as the format's writer puts them out; Fallback where it would raise."""
    if fmt == "messages":
        return _messages_line
    to_item = _array_item(fmt)

    def item(example: Example) -> bytes:
        try:
            text = _dumps(to_item(example), example, 0, Path("-"))
        except Exception as exc:  # a record the writer refuses: it says so, with its message
            raise Fallback(str(exc)) from None
        return text.replace("\n", "\n    ").encode("utf-8")

    return item


def _array_item(fmt: str) -> Callable[[Example], dict[str, Any]]:
    if fmt == "alpaca":
        from longsift.formats.alpaca import to_alpaca

        return to_alpaca
    from longsift.formats.sharegpt import to_fastchat

    return to_fastchat


def _messages_line(example: Example) -> bytes:
    """`messages.write`'s line, from a plain dict built here (Example.to_dict's keys, in its order)."""
    turns = [{"role": m.role, "content": m.content} for m in example.messages]
    record = {"id": example.id, "messages": turns, "source": example.source, "row": example.row,
              "metadata": example.metadata}  # fmt: skip
    try:
        return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError as exc:  # bytes, a lone surrogate, a big integer: the writer's error names the record
        raise Fallback(str(exc)) from None


def _convert_star(args: tuple[Any, ...]) -> Done | str:
    try:
        return convert_block(*args)
    except Fallback as exc:
        _failed(args[-1])
        return f"fallback: {exc}"
    except Exception as exc:  # the sequential path raises it again, exactly as today
        _failed(args[-1])
        return f"error: {type(exc).__name__}: {exc}"


def _failed(seq: int) -> None:
    """Blocks after a failed one wait on it no longer: they fall back too (the parent falls back at the first)."""
    for relay in _RELAYS or ():
        relay.put(seq, None)


def _ready(pending: Any) -> bool:
    return isinstance(pending, Done) or pending.ready()


def _result(pending: Any) -> Done:
    done = pending if isinstance(pending, Done) else pending.get()
    if isinstance(done, str):
        raise Fallback(done)
    return done


def _default_workers() -> int:
    from longsift.select.scan import default_workers

    return default_workers()


def _pool(workers: int) -> Any:
    import multiprocessing

    return multiprocessing.get_context("fork").Pool(workers)
