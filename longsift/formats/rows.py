"""Containers: the one reader of JSON lines, JSON arrays, Parquet and HF datasets, with every row located.

Every command reads its input here, through ONE open handle per file (`Opened`, which also notices a file
replaced or changed while it is read), and every rule about what a row is lives here once: `decide` says for
a row of JSON lines or an element of an array whether it is a record (a JSON object, valid UTF-8, no NaN or
Infinity, no lone surrogate, not too big or too deep) or why not. A schema (alpaca, sharegpt, messages) then
turns each record into an Example. Selection's hot loop (longsift/select/blocks.py) may only accept what
`decide` accepts; whatever it is unsure of goes through `decide` itself.

Text containers are read in blocks of whole rows (`Block`): JSON lines cut at line ends, arrays cut between
elements. Selection scores blocks in parallel (longsift/select); the load stage iterates them in order. Both
see the same rows, the same reasons and the same file:line for each, and memory stays bounded by the limits
(`Limits`) whatever the input: a line or element over `max_record_bytes` is streamed past and quarantined,
never held; a gzip stream that expands beyond `max_gzip_ratio` is refused.

A JSON array is cut by a fast exact test (msgspec splits `[` + candidate + `]` into raw elements; it can only
succeed at a real boundary between elements) and, where that fails, by a byte scanner that follows strings
and brackets. Elements that are well delimited but not records (bad UTF-8, NaN, too deep, not an object, ...)
are quarantined like bad lines. A syntax error that hides where elements end fails the whole file, with its
line and column: rows are never dropped silently. So does anything after the closing bracket, and an array
that is never closed; a file that ends inside its last element quarantines that element (a truncated copy:
nothing after it exists to be lost).
"""

from __future__ import annotations

import gzip
import json
import os
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from longsift.errors import DataError

BLOCK_BYTES = 2 << 20
DEFAULT_MAX_RECORD_BYTES = 4 << 20
DEFAULT_MAX_DEPTH = 100
DEFAULT_MAX_GZIP_RATIO = 200
_GZIP_RATIO_AFTER = 64 << 20  # below this much expanded data, any ratio is fine (small, repetitive files)
BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds applied while reading (CLI: --max-record-bytes, --max-depth, --max-gzip-ratio; 0 lifts one)."""

    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    max_depth: int = DEFAULT_MAX_DEPTH
    max_gzip_ratio: float = DEFAULT_MAX_GZIP_RATIO

    @property
    def record_bytes(self) -> int:
        return self.max_record_bytes or (1 << 62)

    @property
    def depth(self) -> int:
        return self.max_depth or (1 << 30)


@dataclass(frozen=True, slots=True)
class RawRow:
    row: int
    line: int | None
    data: dict[str, Any] | None  # None when the row could not be decoded
    error: str | None = None
    raw: str | None = None  # the undecodable text, for the quarantine file
    size: int = 0  # bytes the row took in the file


def is_gzip(path: Path) -> bool:
    return path.suffix == ".gz"


def inner_suffix(path: Path) -> str:
    """`.jsonl` for both data.jsonl and data.jsonl.gz."""
    suffixes = [s for s in path.suffixes if s != ".gz"]
    return suffixes[-1].lower() if suffixes else ""


def open_binary(path: Path) -> IO[bytes]:
    """A plain binary stream of the (decompressed) file, for small side files (request files, judgments)."""
    if is_gzip(path):
        return gzip.open(path, "rb")  # type: ignore[return-value]  # a GzipFile is a binary IO
    return path.open("rb")


# ---------------------------------------------------------------------------------------------- one handle


class Opened:
    """One open handle on an input file: every read goes through it, and `check()` says whether the file
    changed under it (replaced, truncated, appended or rewritten: inode, size or mtime differ)."""

    def __init__(self, path: Path, limits: Limits = Limits()) -> None:
        self.path, self.name, self.limits = path, str(path), limits
        if path.is_dir():
            raise DataError(self.name, "is a folder, not a data file; pass a file (or a save_to_disk folder)")
        try:
            self.disk = path.open("rb")
        except FileNotFoundError:
            raise DataError(self.name, "no such file or directory") from None
        except OSError as exc:
            raise DataError(self.name, f"cannot be read ({exc.strerror})") from None
        self.fd = self.disk.fileno()
        self.identity = _identity(os.fstat(self.fd))
        self.gzip = is_gzip(path)
        self.stream: IO[bytes] = gzip.GzipFile(fileobj=self.disk, mode="rb") if self.gzip else self.disk  # type: ignore[assignment]
        self.position = 0  # bytes of the (decompressed) stream consumed so far
        self.head = self._peek_head()

    def _peek_head(self) -> bytes:
        head = self.read(4096)
        self.rewind()
        return head

    def rewind(self) -> None:
        self.disk.seek(0)
        if self.gzip:
            self.stream = gzip.GzipFile(fileobj=self.disk, mode="rb")  # type: ignore[assignment]
        self.position = 0

    def skip_bom(self) -> int:
        """Skip a UTF-8 byte order mark at the very start; returns the offset of the first data byte."""
        if self.position == 0 and self.head.startswith(BOM):
            self.read(len(BOM))
        return self.position

    def read(self, size: int) -> bytes:
        try:
            data = self.stream.read(size)
        except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
            raise DataError(self.name, _gzip_reason(exc)) from None
        self.position += len(data)
        if self.gzip and self.limits.max_gzip_ratio and self.position > _GZIP_RATIO_AFTER:
            packed = max(self.disk.tell(), 1)
            if self.position > self.limits.max_gzip_ratio * packed:
                raise DataError(
                    self.name,
                    f"the gzip stream expands over {self.limits.max_gzip_ratio:g}x ({self.position >> 20} MiB "
                    f"from {packed >> 10} KiB): a decompression bomb? Pass --max-gzip-ratio 0 to lift the limit",
                )
        return data

    def pread(self, start: int, end: int) -> bytes:
        """Bytes [start, end) of a plain file, from this handle (also in a forked worker: the fd is shared)."""
        return os.pread(self.fd, end - start, start)

    def disk_done(self) -> int:
        return self.disk.tell()

    def check(self) -> None:
        """Raise if the file on disk is no longer the one this handle opened, or changed since."""
        now = _identity(os.fstat(self.fd))
        try:
            on_path = _identity(os.stat(self.path))
        except OSError:
            on_path = None
        if now != self.identity or on_path != self.identity:
            raise DataError(
                self.name,
                "the file changed while it was being read (size, mtime or inode differ); nothing was written: "
                "rerun once it is stable",
            )

    def close(self) -> None:
        if self.gzip:
            self.stream.close()
        self.disk.close()

    def __enter__(self) -> Opened:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _identity(stat: os.stat_result) -> tuple[int, int, int, int]:
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _gzip_reason(exc: BaseException) -> str:
    if isinstance(exc, EOFError):
        return "the gzip stream is truncated (it ends before its end marker): the file is incomplete; copy it again"
    if isinstance(exc, gzip.BadGzipFile):
        return (f"is not a valid gzip file, or has bytes after its gzip data ({exc}); remove the .gz suffix if "
                "it is not compressed")  # fmt: skip
    return f"the gzip data is corrupt ({exc}); copy the file again"


def sniff(opened: Opened, jsonl: bool = False) -> str:
    """The container of a text file from its first bytes: "json" (array) or "jsonl"; else a clear error.
    `jsonl`: the name says JSON lines: only an empty, blank or UTF-16 file is refused (lines are judged alone)."""
    head = opened.head
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(head) > 1 and (head[0] == 0 or head[1] == 0)):
        raise DataError(opened.name, "looks like UTF-16 or UTF-32 text; longsift reads UTF-8: convert it first "
                        "(iconv -f UTF-16 -t UTF-8)")  # fmt: skip
    if not head:
        raise DataError(opened.name, "the file is empty: there are no records to read")
    text = head.removeprefix(BOM).lstrip(b" \t\r\n")
    if not text:
        if _only_whitespace(opened):
            raise DataError(opened.name, "the file holds only whitespace: there are no records to read")
        text = b"?"
    if jsonl:
        return "jsonl"
    first = text[:1]
    if first == b"[":
        return "json"
    if first == b"{":
        if text.split(b"\n", 1)[0].strip() == b"{":  # a line that is only "{" is no JSON-lines row
            raise DataError(opened.name, "holds one JSON object spread over several lines, not records: "
                            "expected JSON lines (one object per line) or a JSON array of objects")  # fmt: skip
        return "jsonl"
    from longsift.errors import UnknownFormatError

    if first in b'0123456789-"tfn':
        raise UnknownFormatError(opened.name, "holds a single JSON value, not records: expected JSON lines "
                                 "(one object per line) or a JSON array of objects")  # fmt: skip

    raise UnknownFormatError(
        opened.name,
        "unknown file format: expected JSON lines, a JSON array, Parquet or a Hugging Face dataset "
        f"(the file starts with {first.decode('utf-8', 'backslashreplace')!r})",
    )


def _only_whitespace(opened: Opened) -> bool:
    try:
        while chunk := opened.read(1 << 20):
            if chunk.strip(b" \t\r\n"):
                return False
        return True
    finally:
        opened.rewind()


def first_char(path: Path) -> str:
    with Opened(path) as opened:
        text = opened.head.removeprefix(BOM).decode("utf-8", errors="replace").lstrip(" \t\r\n")
    return text[:1]


# ------------------------------------------------------------------------------------------- one rule set


def decode_record(raw: bytes, limits: Limits) -> tuple[dict[str, Any] | None, str | None, Any]:
    """(record, None, None) for a good row; (None, reason, what to keep in the quarantine) for a bad one.

    A reason starting with SYNTAX is a JSON syntax error: in a JSON array it fails the file (see above)."""
    if len(raw) > limits.record_bytes:
        return None, oversized(len(raw), limits), None
    if raw.count(b"[") + raw.count(b"{") > limits.depth and nesting_depth(raw) > limits.depth:
        return None, f"nested deeper than {limits.depth} levels (--max-depth)", _lossy(raw[:2000])
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return None, _why_not_json(raw, exc), _lossy(raw)
    if type(data) is not dict:
        return None, f"expected a JSON object, got {type(data).__name__}", _lossy(raw)
    return data, None, None


def oversized(size: int, limits: Limits) -> str:
    return f"record is {size} bytes, over the limit of {limits.record_bytes} (--max-record-bytes)"


def _why_not_json(raw: bytes, exc: orjson.JSONDecodeError) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as utf:
        return f"invalid UTF-8 at byte {utf.start}"
    try:
        json.loads(text, parse_constant=_refuse_constant)
    except _NotJson as constant:
        return f"{constant} is not a JSON value (invalid JSON)"
    except (ValueError, RecursionError):
        return f"{SYNTAX}{exc}"
    if _LONE_SURROGATE.search(text):
        return "a lone surrogate escape (\\ud800-\\udfff) is not a character (invalid JSON)"
    return f"not strict JSON: {exc}"


SYNTAX = "invalid JSON: "  # + orjson's message: the reason of a syntax error (other reasons say more)


class _NotJson(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NotJson(name)


_LONE_SURROGATE = re.compile(r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])|(?<![0-9a-fA-F]{4})\\u[dD][c-fC-F]")


def _lossy(raw: bytes) -> str:
    return raw.decode("utf-8", errors="backslashreplace")


_STRUCTURE = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.S)


def nesting_depth(raw: bytes) -> int:
    """The deepest bracket nesting of a JSON text, strings skipped (only run when brackets are many)."""
    depth = deepest = 0
    for match in _STRUCTURE.finditer(raw):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        elif token in (b"]", b"}"):
            depth -= 1
    return deepest


# -------------------------------------------------------------------------------------------------- blocks


@dataclass(frozen=True, slots=True)
class Block:
    """A run of whole rows of a text container: bytes [start, end) of the (decompressed) file.

    kind "lines" (JSON lines), "elements" (a JSON array's elements: `data` holds them in brackets, as the
    fast test cut them; or `items`, (line, bytes or None when oversized, size) of each, as the byte scanner
    cut them), or "oversized" (one line over the record limit, streamed past: `size` bytes). `data` is None
    for a plain file's block of lines: its scanner preads it through the shared handle (`Opened.pread`).
    """

    index: int
    kind: str
    start: int
    end: int
    lines: int  # newlines in [start, end): the consumer adds them up for file:line
    data: bytes | None = None
    items: list[tuple[int, bytes | None, int]] | None = None  # (offset in block, bytes or None if oversized, size)
    size: int = 0
    disk_end: int = 0  # bytes of the file on disk read so far (compressed for .gz): for progress bars
    truncated: bool = False  # "elements": the file ended inside the last one
    decoded: Any = None  # "elements" cut by the fast test: their msgspec Raw views (kept in this process only)
    first_line: int = 0  # the line of the file that the block's first byte is on (0: JSON lines, counted by scans)


def jsonl_blocks(opened: Opened, block_bytes: int = BLOCK_BYTES) -> Iterator[Block]:
    """Cut JSON lines into blocks of about `block_bytes` whole lines; a line over the record limit becomes
    its own "oversized" block, streamed past in chunks (memory: a block plus one limit, at most).

    A plain file's blocks carry no bytes: their scanner preads them (`Opened.pread`), and this cuts them
    with small reads around each boundary. Line numbers come from the scanners (`BlockRows.lines`)."""
    if opened.gzip:
        yield from _stream_blocks(opened, block_bytes)
    else:
        yield from _plain_blocks(opened, block_bytes)
    opened.check()


def _plain_blocks(opened: Opened, block_bytes: int) -> Iterator[Block]:
    size, limit = opened.identity[2], opened.limits.record_bytes
    start, index = opened.skip_bom(), 0
    while start < size:
        target = start + block_bytes
        end = size if target >= size else _newline_after(opened, target, limit)
        if end is not None:
            yield Block(index, "lines", start, end, 0, disk_end=end, first_line=0)
            start, index = end, index + 1
            opened.check()
            continue
        line_start = _newline_before(opened, target, start)  # the line around `target` is over the limit
        if line_start > start:
            yield Block(index, "lines", start, line_start, 0, disk_end=line_start, first_line=0)
            index += 1
        end = _newline_after(opened, line_start, None) or size
        ending = opened.pread(max(line_start, end - 2), end)
        line_end = ending.endswith(b"\n") + ending.endswith(b"\r\n")
        yield Block(index, "oversized", line_start, end, 1, size=end - line_start - line_end,
                    disk_end=end, first_line=0)  # fmt: skip
        start, index = end, index + 1
        opened.check()


def _newline_after(opened: Opened, at: int, limit: int | None, window: int = 64 << 10) -> int | None:
    """The offset just past the first newline at or after `at` (the file's end if none); None if there is
    none within `limit` bytes."""
    position = at
    while limit is None or position - at <= limit:
        data = opened.pread(position, position + window)
        if not data:
            return position
        found = data.find(b"\n")
        if found >= 0:
            return position + found + 1
        position += len(data)
    return None


def _newline_before(opened: Opened, at: int, floor: int, window: int = 64 << 10) -> int:
    """The offset just past the last newline before `at` (no earlier than `floor`)."""
    position = at
    while position > floor:
        low = max(floor, position - window)
        found = opened.pread(low, position).rfind(b"\n")
        if found >= 0:
            return low + found + 1
        position = low
    return floor


def _stream_blocks(opened: Opened, block_bytes: int) -> Iterator[Block]:
    limit = opened.limits.record_bytes
    start = opened.skip_bom()
    index, carry = 0, b""
    while True:
        chunk = opened.read(block_bytes)
        data = carry + chunk if carry else chunk
        if not chunk:
            if data:
                yield Block(index, "lines", start, start + len(data), 0, data, disk_end=opened.disk_done())
            return
        cut = data.rfind(b"\n")
        if cut < 0:
            if len(data) <= limit:
                carry = data
                continue
            size, rest, line_end = _skip_line(opened, data)
            yield Block(index, "oversized", start, start + size, 1, size=size - line_end,
                        disk_end=opened.disk_done(), first_line=0)  # fmt: skip
            index, start, carry = index + 1, start + size, rest
            continue
        carry = data[cut + 1 :]
        yield Block(index, "lines", start, start + cut + 1, 0, data[: cut + 1], disk_end=opened.disk_done(),
                    first_line=0)  # fmt: skip
        index, start = index + 1, start + cut + 1


def _skip_line(opened: Opened, seen: bytes) -> tuple[int, bytes, int]:
    """Stream past the rest of an oversized line: (its size with the line end, the bytes after it, the size of
    its line end: 1 for "\\n", 2 for "\\r\\n", 0 at the end of the file)."""
    size, last = len(seen), seen[-1:]
    while chunk := opened.read(1 << 20):
        cut = chunk.find(b"\n")
        if cut >= 0:
            before = chunk[cut - 1 : cut] if cut else last
            return size + cut + 1, chunk[cut + 1 :], 1 + (before == b"\r")
        size, last = size + len(chunk), chunk[-1:]
    return size, b"", 0


# ---------------------------------------------------------------------------------------------- JSON array


_SPACE = b" \t\r\n"
_SEPARATOR = re.compile(rb"[ \t\r\n]*,[ \t\r\n]*")
_TOKEN = re.compile(rb'["\[\]{},\\]')
_STRING_BODY = re.compile(rb'[^"\\]*')


def array_blocks(opened: Opened, block_bytes: int = BLOCK_BYTES) -> Iterator[Block]:
    """Cut a top-level JSON array into blocks of whole elements (see the module docstring)."""
    scanner = _ArrayScanner(opened, block_bytes)
    yield from scanner.blocks()
    opened.check()


class _ArrayScanner:
    def __init__(self, opened: Opened, block_bytes: int) -> None:
        self.opened, self.block_bytes = opened, block_bytes
        self.limit = opened.limits.record_bytes
        self.buf = b""  # unread bytes, starting at stream offset `base`
        self.base = 0
        self.line = 1  # line of buf[0]
        self.eof = False
        self.index = 0
        self.closed = False  # the closing bracket (or the end of a truncated file) was reached
        self.line_start = 0  # stream offset where the line of buf[0] starts (for columns in errors)

    def fill(self, want: int) -> None:
        while not self.eof and len(self.buf) < want:
            chunk = self.opened.read(max(self.block_bytes, want - len(self.buf)))
            if not chunk:
                self.eof = True
            self.buf += chunk

    def consume(self, n: int, lines: int | None = None) -> None:
        newlines = self.buf.count(b"\n", 0, n) if lines is None else lines
        if newlines:
            self.line_start = self.base + self.buf.rfind(b"\n", 0, n) + 1
        self.line += newlines
        self.base += n
        self.buf = self.buf[n:]

    def error(self, reason: str, at: int) -> DataError:
        line = self.line + self.buf.count(b"\n", 0, at)
        newline = self.buf.rfind(b"\n", 0, at)
        column = at - newline if newline >= 0 else self.base + at - self.line_start + 1
        return DataError(self.opened.name, f"column {column}: {reason}", line=line)

    def blocks(self) -> Iterator[Block]:
        self.base = self.opened.skip_bom()
        self.fill(1)
        self.skip_space()
        if self.buf[:1] != b"[":
            raise self.error("expected a JSON array of records ('[' ...)", 0)
        self.consume(1)
        self.skip_space()
        if self.buf[:1] == b"]":
            self.consume(1)
            self.expect_end()
            return
        while True:
            self.fill(self.block_bytes)
            block = self.fast_block()
            if block is None:
                block = self.exact_block()
            if block is not None:
                yield block
            if self.closed:
                self.expect_end()
                return

    def skip_space(self) -> None:
        while True:
            stripped = self.buf.lstrip(_SPACE)
            self.consume(len(self.buf) - len(stripped))
            if self.buf or self.eof:
                return
            self.fill(1)

    def fast_block(self) -> Block | None:
        """Elements up to the last comma (or the closing bracket) after which `[`+prefix+`]` parses."""
        import msgspec

        buf = self.buf
        ends: list[int] = []
        if self.eof:
            tail = buf.rstrip(_SPACE)
            if tail.endswith(b"]"):
                ends.append(len(tail) - 1)
        search = len(buf)
        while len(ends) < 3:
            comma = buf.rfind(b",", 0, search)
            if comma <= 0:
                break
            search = comma
            if buf[max(0, comma - 256) : comma].rstrip(_SPACE)[-1:] in (b"}", b"]"):
                ends.append(comma)
        view = memoryview(buf)
        for end in ends:
            bracketed = b"".join((b"[", view[:end], b"]"))
            try:
                elements = msgspec.json.decode(bracketed, type=list[msgspec.Raw])
            except msgspec.DecodeError:
                continue
            if elements:
                view.release()
                return self.emit_elements(bracketed, elements, end)
        view.release()
        return None

    def emit_elements(self, bracketed: bytes, elements: list[Any], end: int) -> Block:
        """The block of these elements; consumes through the separator (or the closing bracket) at `end`."""
        closing = self.buf[end : end + 1] == b"]"
        start = self.base
        consumed = end + 1
        if not closing:  # and the whitespace after the comma (skip_space below takes any more)
            piece = self.buf[consumed : consumed + 4096]
            consumed += len(piece) - len(piece.lstrip(_SPACE))
        lines = self.buf.count(b"\n", 0, consumed)
        block = Block(self.index, "elements", start, start + consumed, lines, bracketed,
                      disk_end=self.opened.disk_done(), first_line=self.line, decoded=elements)  # fmt: skip
        self.index += 1
        self.consume(consumed, lines)
        self.closed = closing
        if not closing:
            self.skip_space()
            if not self.buf and self.eof:
                raise self.error("the JSON array is not closed (file truncated?)", 0)
        return block

    def exact_block(self) -> Block | None:
        """Elements cut by following strings and brackets, one at a time, until a block's worth is read."""
        items: list[tuple[int, bytes | None, int]] = []
        start, start_line, taken = self.base, self.line, 0
        stop = b","
        while taken < self.block_bytes and not self.closed:
            line = self.line - start_line + 1
            raw, size, stop = self.one_element()
            items.append((line, raw, size))
            taken += size
            if stop != b",":
                self.closed = True
        if not items:
            return None
        block = Block(self.index, "elements", start, self.base, self.line - start_line, items=items,
                      disk_end=self.opened.disk_done(), truncated=stop == b"EOF", first_line=start_line)  # fmt: skip
        self.index += 1
        return block

    def one_element(self) -> tuple[bytes | None, int, bytes]:
        """Scan one element from buf[0]: (its bytes or None when over the limit, its size, the byte after it).

        Consumes the element and the separator after it."""
        depth, pos, in_string = 0, 0, False
        kept: list[bytes] = []  # parts of an element larger than buf, while under the limit
        size = 0
        while True:
            if pos >= len(self.buf):
                if self.eof:
                    return self.truncated(kept, size, pos)
                kept, size, pos = self.spill(kept, size, pos)
                self.fill(self.block_bytes)
                continue
            if in_string:
                pos = _STRING_BODY.match(self.buf, pos).end()  # type: ignore[union-attr]
                if pos >= len(self.buf):
                    continue
                if self.buf[pos : pos + 1] == b"\\":
                    if pos + 1 >= len(self.buf) and not self.eof:
                        kept, size, pos = self.spill(kept, size, pos)
                        self.fill(len(self.buf) + 2)
                        continue
                    pos += 2
                    continue
                in_string = False
                pos += 1
                continue
            match = _TOKEN.search(self.buf, pos)
            if match is None:
                pos = len(self.buf)
                continue
            token, pos = match.group(), match.start()
            if token == b'"':
                in_string, pos = True, pos + 1
            elif token in (b"[", b"{"):
                depth, pos = depth + 1, pos + 1
            elif token in (b"]", b"}") and depth > 0:
                depth, pos = depth - 1, pos + 1
            elif token == b"," and depth > 0 or token == b"\\":
                pos += 1
            elif token in (b",", b"]"):
                return self.finish(kept, size, pos, token)
            else:
                raise self.error("invalid JSON: '}' without its '{'", pos)

    def spill(self, kept: list[bytes], size: int, pos: int) -> tuple[list[bytes], int, int]:
        """Move buf[:pos] of the current element out of the buffer (kept while under the limit)."""
        part = self.buf[:pos]
        size += len(part)
        if size <= self.limit:
            kept.append(part)
        else:
            kept = []
        self.consume(pos)
        return kept, size, 0

    def finish(self, kept: list[bytes], size: int, pos: int, stop: bytes) -> tuple[bytes | None, int, bytes]:
        part = self.buf[:pos]
        size += len(part)
        raw = b"".join([*kept, part]).rstrip(_SPACE) if size <= self.limit else None
        if raw is not None and not raw:
            raise self.error("invalid JSON: an empty element (two commas, or a comma before ']')", pos)
        self.consume(pos + 1)
        if stop == b",":
            self.skip_space()
            if not self.buf and self.eof:
                raise self.error("the JSON array is not closed (file truncated?)", 0)
            if self.buf[:1] == b"]":
                raise self.error("invalid JSON: a comma before ']'", 0)
        return raw, size, stop

    def truncated(self, kept: list[bytes], size: int, pos: int) -> tuple[bytes | None, int, bytes]:
        part = self.buf[:pos]
        size += len(part)
        if size == 0 or not b"".join([*kept, part]).strip():
            raise self.error("the JSON array is not closed (file truncated?)", pos)
        raw = b"".join([*kept, part]) if size <= self.limit else None
        self.consume(pos)
        self.closed = True
        return (raw if raw is not None else None), size, b"EOF"

    def expect_end(self) -> None:
        """Only whitespace may follow the closing bracket."""
        while True:
            stripped = self.buf.lstrip(_SPACE)
            if stripped:
                self.consume(len(self.buf) - len(stripped))
                what = "another JSON array" if stripped[:1] == b"[" else "data"
                raise self.error(f"{what} after the end of the JSON array: one file holds one array; "
                                 "split it or join the arrays", 0)  # fmt: skip
            self.consume(len(self.buf))
            if self.eof:
                return
            self.fill(1)
            if not self.buf:
                return


# ------------------------------------------------------------------------------------------ rows, in order


def decide(rows: BlockRows, i: int, row: int, limits: Limits, source: str) -> RawRow:
    """The one decision for row `i` of a text block: a record, or why not (line relative to the block).
    A syntax error inside a JSON array raises instead (see `refuse_syntax_in_array`)."""
    line = rows.line_of(i)
    if rows.truncated and i == len(rows.raws) - 1:
        raw = rows.raws[i]
        return RawRow(row, line, None, TRUNCATED, _lossy(bytes(raw)) if raw is not None else None, rows.size(i))
    raw = rows.raw(i)
    if raw is None or rows.size(i) > limits.record_bytes:
        return RawRow(row, line, None, oversized(rows.size(i), limits), None, rows.size(i))
    data, reason, kept = decode_record(raw, limits)
    found = RawRow(row, line, data, reason, kept, len(raw))
    if data is None:
        refuse_syntax_in_array(found, rows.in_array, source, rows.base_line)
    return found


def iter_text(opened: Opened, container: str, block_bytes: int = BLOCK_BYTES) -> Iterator[RawRow]:
    """Every row of a JSON-lines file or JSON array, in order, located."""
    blocks = jsonl_blocks(opened, block_bytes) if container == "jsonl" else array_blocks(opened, block_bytes)
    row = lines = 0
    for block in blocks:
        data = opened.pread(block.start, block.end) if block.data is None and block.kind == "lines" else None
        rows = rows_of_block(block, data)
        rows.first_line = block.first_line
        base_line = block.first_line - 1 if block.first_line else lines
        lines = base_line + rows.lines
        for i in range(len(rows.raws)):
            if rows.blank(i):
                continue
            found = decide(rows, i, row, opened.limits, opened.name)
            yield RawRow(found.row, base_line + (found.line or 0), found.data, found.error, found.raw, found.size)
            row += 1


def iter_jsonl(path: Path, limits: Limits = Limits()) -> Iterator[RawRow]:
    with Opened(path, limits) as opened:
        yield from iter_text(opened, "jsonl")


def iter_json_array(path: Path, limits: Limits = Limits(), block_bytes: int = BLOCK_BYTES) -> Iterator[RawRow]:
    with Opened(path, limits) as opened:
        yield from iter_text(opened, "json", block_bytes)


# ------------------------------------------------------------------------------------- Parquet, HF datasets


def iter_parquet(opened: Opened, batch_rows: int = 4096) -> Iterator[RawRow]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        reader = pq.ParquetFile(opened.disk)
        row = 0
        for batch in reader.iter_batches(batch_size=batch_rows):
            for data in batch.to_pylist():
                yield RawRow(row, None, data)
                row += 1
    except (pa.ArrowException, OSError) as exc:
        raise DataError(opened.name, f"is not a readable Parquet file ({exc}); is it complete?") from None
    opened.check()


def iter_hf(name: str, split: str = "train") -> Iterator[RawRow]:
    """A `save_to_disk` folder, or a hub id streamed (nothing is downloaded up front)."""
    try:
        import datasets
    except ImportError as exc:
        from longsift.errors import MissingDependencyError

        raise MissingDependencyError("datasets", "hf", "reading Hugging Face datasets") from exc
    if Path(name).is_dir():
        dataset = _load_from_disk(datasets, name, split)
    else:
        _check_hub_reachable(name)
        try:
            dataset = datasets.load_dataset(name, split=split, streaming=True)
        except (ConnectionError, OSError, ValueError) as exc:
            raise DataError(
                name, f"cannot load this Hugging Face dataset ({exc}); pass a local file or folder"
            ) from None
    for row, data in enumerate(dataset):
        yield RawRow(row, None, dict(data))


def _load_from_disk(datasets: Any, name: str, split: str) -> Any:
    folder = Path(name)
    if not any((folder / marker).is_file() for marker in ("dataset_info.json", "state.json", "dataset_dict.json")):
        raise DataError(name, "is a folder, but not a Hugging Face dataset saved with save_to_disk; pass a data file")
    try:
        loaded = datasets.load_from_disk(name)
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise DataError(name, f"cannot read this saved dataset ({exc})") from None
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise DataError(name, f"this DatasetDict has no {split!r} split (it has {', '.join(loaded) or 'none'}); "
                            "save the split you want with save_to_disk, or export it to JSON lines")  # fmt: skip
        return loaded[split]
    return loaded


def _check_hub_reachable(name: str) -> None:
    """Fail at once, not after minutes of retries, when the Hub cannot be reached."""
    offline = any(
        os.environ.get(v, "").lower() in ("1", "true", "yes") for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )
    reason = "HF_HUB_OFFLINE is set" if offline else None
    if reason is None:
        import socket

        host = os.environ.get("HF_ENDPOINT", "https://huggingface.co").split("://")[-1].split("/")[0]
        try:
            socket.create_connection((host.split(":")[0], int(host.split(":")[1]) if ":" in host else 443), 3).close()
        except OSError as exc:
            reason = f"{host}: {exc.strerror or exc}"
    if reason:
        raise DataError(name, f"cannot reach the Hugging Face Hub ({reason}); pass a local file or folder")


# ------------------------------------------------------------------------------- a block's rows, for scans


@dataclass
class BlockRows:
    """The rows of one text block as raw bytes, for selection's scanners (which decide each with `row_of`).

    `raws[i]`: a line (blank lines included: they are no row), an element (bytes or a msgspec Raw view), or
    None for a row over the size limit; `line_of(i)`: its line, relative to the block's first line."""

    raws: list[Any]
    lines: int
    line_of: Callable[[int], int]
    in_array: bool = False
    sizes: list[int] | None = None
    first_line: int = 0  # the block's first line in the file, when known (JSON arrays; 0 for JSON lines)
    truncated: bool = False  # the last row is the unfinished tail of a truncated array
    oversized: bool = True  # some row may be over the size limit (False: the block is smaller than it)

    @property
    def base_line(self) -> int:
        return self.first_line - 1 if self.first_line else 0

    def raw(self, i: int) -> bytes | None:
        raw = self.raws[i]
        if raw is None:
            return None
        raw = raw if type(raw) is bytes else bytes(raw)
        return raw if self.in_array else raw.strip()

    def size(self, i: int) -> int:
        if self.sizes is not None:
            return self.sizes[i]
        raw = self.raws[i]
        if raw is None:
            return 0
        return len(raw) if self.in_array else len(raw) - raw.endswith(b"\r")  # a line without its line end

    def blank(self, i: int) -> bool:
        raw = self.raws[i]
        return not self.in_array and raw is not None and not raw.strip()


def rows_of_block(block: Block, data: bytes | None = None, block_limit: int = 0) -> BlockRows:
    """A text block's rows; `data`: the block's bytes when the block was sent without them (see Block).
    `block_limit`: the record size limit (a block no larger holds no row over it)."""
    if block.kind == "oversized":
        return BlockRows([None], block.lines, lambda i: 1, sizes=[block.size])
    if block.kind == "lines":
        text = block.data if block.data is not None else data or b""
        lines = text.split(b"\n")
        newlines = len(lines) - 1
        if not lines[-1]:
            lines.pop()
        return BlockRows(lines, newlines, lambda i: i + 1, oversized=len(text) > block_limit)
    if block.items is not None:
        items = block.items
        return BlockRows([raw for _, raw, _ in items], block.lines, lambda i: items[i][0], True,
                         [size for _, _, size in items], truncated=block.truncated)  # fmt: skip
    assert block.data is not None
    import msgspec

    data = block.data  # the elements in brackets
    elements = block.decoded or msgspec.json.decode(data, type=list[msgspec.Raw])
    line_of = _lazy_element_lines(data, elements)
    return BlockRows(elements, block.lines, line_of, True, None, oversized=len(data) > block_limit)


def _lazy_element_lines(data: bytes, elements: list[Any]) -> Callable[[int], int]:
    """line_of(i) for elements cut from `data` (which starts with '['), computed only when asked."""
    offsets: list[int] = []
    counted = [0, 1]  # (offset, line) of the last answer: lines are asked for in rising order

    def line_of(i: int) -> int:
        offset = _view_offset(data, elements[i])
        if offset is None:
            if not offsets:
                offsets.extend(_element_offsets(data, elements))
            offset = offsets[i]
        at, line = counted if offset >= counted[0] else (0, 1)
        line += data.count(b"\n", at, offset)
        counted[:] = [offset, line]
        return line

    return line_of


def _view_offset(data: bytes, element: Any) -> int | None:
    """Where a msgspec Raw view starts in `data` (it points into it), checked; None if it is not a view."""
    import numpy as np

    try:
        offset = int(np.frombuffer(element, np.uint8).ctypes.data - np.frombuffer(data, np.uint8).ctypes.data)
    except (TypeError, ValueError):
        return None
    size = len(element)
    if 0 <= offset <= len(data) - size and data[offset : offset + size] == bytes(element):
        return offset
    return None


def _element_offsets(data: bytes, elements: list[Any]) -> list[int]:
    """Where each element starts in `data` ('[', then elements and separators alternate)."""
    offsets, pos = [], 1 + len(data[1:]) - len(data[1:].lstrip(_SPACE))
    for element in elements:
        offsets.append(pos)
        pos += len(element)
        match = _SEPARATOR.match(data, pos)
        if match:
            pos = match.end()
    return offsets


def refuse_syntax_in_array(found: RawRow, in_array: bool, source: str, base_line: int = 0) -> None:
    """A syntax error inside a JSON array fails the whole file: where its elements end cannot be trusted."""
    if in_array and found.error and found.error.startswith(SYNTAX) and not found.error.startswith(TRUNCATED):
        start = base_line + (found.line or 0)
        where = _ORJSON_WHERE.search(found.error)
        line, column = (start + int(where[1]) - 1, int(where[2])) if where else (start, 0)
        reason = _ORJSON_WHERE.sub("", found.error).rstrip(": ")
        at = f"column {column} (in the element that starts on line {start})" if column else "in this element"
        raise DataError(
            source,
            f"{at}: {reason}; nothing was read, since the elements after it cannot be located for sure: "
            "fix the file, or convert it to JSON lines",
            line=line,
        )


_ORJSON_WHERE = re.compile(r":? ?line (\d+) column (\d+) \(char \d+\)")


TRUNCATED = SYNTAX + "the file ends inside this element (truncated?)"
