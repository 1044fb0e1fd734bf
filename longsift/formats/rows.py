"""Containers: stream raw rows (dicts) out of JSONL, JSON arrays, Parquet and HF datasets, with locations.

A container knows nothing of the record layout; a schema (alpaca, sharegpt, messages) turns each dict
into an Example. Every row carries its 0-based `row` (position among records in the file, bad ones
included) and, for text files, its 1-based `line`, so a rejection can say exactly where it is.
"""

from __future__ import annotations

import codecs
import gzip
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from longsift.errors import DataError

CHUNK_CHARS = 1 << 20


@dataclass(frozen=True, slots=True)
class RawRow:
    row: int
    line: int | None
    data: dict[str, Any] | None  # None when the row could not be decoded
    error: str | None = None
    raw: str | None = None  # the undecodable text, for the quarantine file
    size: int = 0  # bytes (or characters) the row took in the file


def open_binary(path: Path) -> IO[bytes]:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]  # a GzipFile is a binary IO
    return path.open("rb")


def is_gzip(path: Path) -> bool:
    return path.suffix == ".gz"


def inner_suffix(path: Path) -> str:
    """`.jsonl` for both data.jsonl and data.jsonl.gz."""
    suffixes = [s for s in path.suffixes if s != ".gz"]
    return suffixes[-1].lower() if suffixes else ""


def first_char(path: Path) -> str:
    with open_binary(path) as handle:
        head = handle.read(4096)
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    return text[:1]


def iter_jsonl(path: Path, start: int = 0, end: int | None = None, first_row: int = 0) -> Iterator[RawRow]:
    """Rows of a JSON-lines file; `start`/`end` (byte offsets at line starts) allow parallel scans."""
    row = first_row
    with open_binary(path) as handle:
        if start:
            handle.seek(start)
        position = start
        for line_no, raw in enumerate(handle, 1):
            if end is not None and position >= end:
                break
            position += len(raw)
            stripped = raw.strip()
            if not stripped:
                continue
            yield _decode_json_line(stripped, row, line_no)
            row += 1


@dataclass(frozen=True, slots=True)
class Block:
    """A run of whole JSON lines: bytes [start, end) of the (decompressed) file. `data` is None for a plain
    file, whose reader seeks to `start` itself (so parallel workers share no bytes with the parent)."""

    index: int
    start: int
    end: int
    data: bytes | None = None
    disk_end: int = 0  # bytes of the file on disk read so far (compressed for .gz): for progress bars

    def read(self, path: Path) -> bytes:
        if self.data is not None:
            return self.data
        with path.open("rb") as handle:
            handle.seek(self.start)
            return handle.read(self.end - self.start)


def iter_jsonl_blocks(path: Path, block_bytes: int = 4 << 20) -> Iterator[Block]:
    """Cut a JSON-lines file into blocks of about `block_bytes`, each ending at a line end.

    Rows and line numbers restart in each block; a consumer adds the counts of the blocks before it.
    """
    if is_gzip(path):
        with path.open("rb") as disk, gzip.GzipFile(fileobj=disk, mode="rb") as handle:
            start, index = 0, 0
            while data := handle.read(block_bytes):
                if not data.endswith(b"\n"):
                    data += handle.readline()
                yield Block(index, start, start + len(data), data, disk.tell())
                start, index = start + len(data), index + 1
        return
    size = path.stat().st_size
    with path.open("rb") as handle:
        start, index = 0, 0
        while start < size:
            handle.seek(min(start + block_bytes, size))
            handle.readline()
            end = min(handle.tell(), size)
            yield Block(index, start, end, None, end)
            start, index = end, index + 1


def decode_json_line(raw: bytes, row: int, line_no: int) -> RawRow:
    return _decode_json_line(raw, row, line_no)


def _decode_json_line(raw: bytes, row: int, line_no: int) -> RawRow:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as utf:
            return RawRow(row, line_no, None, f"invalid UTF-8 at byte {utf.start}", _lossy(raw), len(raw))
        return RawRow(row, line_no, None, f"invalid JSON: {exc}", text, len(raw))
    if not isinstance(data, dict):
        return RawRow(row, line_no, None, f"expected a JSON object, got {type(data).__name__}", _lossy(raw))
    return RawRow(row, line_no, data, size=len(raw))


def _lossy(raw: bytes) -> str:
    return raw.decode("utf-8", errors="backslashreplace")


def iter_json_array(path: Path, chunk_chars: int = CHUNK_CHARS) -> Iterator[RawRow]:
    """Elements of a top-level JSON array, streamed: memory stays near one chunk plus one element."""
    decoder = json.JSONDecoder()
    utf8 = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
    with open_binary(path) as handle:
        reader = _ChunkReader(handle, utf8, chunk_chars)
        reader.skip_space()
        if reader.peek() != "[":
            raise DataError(str(path), "expected a JSON array of records ('[' ...)", line=reader.line)
        reader.advance(1)
        row = 0
        while True:
            reader.skip_space()
            if reader.peek() == "]":
                return
            if reader.peek() == "" and reader.eof:
                raise DataError(str(path), "the JSON array is not closed (file truncated?)", line=reader.line)
            line = reader.line
            try:
                data, text = reader.decode(decoder)
            except ValueError as exc:
                rest = reader.rest()
                yield RawRow(row, line, None, f"invalid JSON ({exc}); the rest of the array is unreadable", rest)
                return
            if _ESCAPED_BYTES.search(text):
                yield RawRow(
                    row,
                    line,
                    None,
                    "invalid UTF-8",
                    text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"),
                    len(text),
                )
            elif not isinstance(data, dict):
                yield RawRow(row, line, None, f"expected a JSON object, got {type(data).__name__}", text)
            else:
                yield RawRow(row, line, data, size=len(text))
            row += 1
            reader.skip_space()
            if reader.peek() == ",":
                reader.advance(1)


# bytes that were not UTF-8 come back from the "surrogateescape" decoder as lone low surrogates
_ESCAPED_BYTES = re.compile("[\udc80-\udcff]")


class _ChunkReader:
    """A sliding text window over a binary handle that keeps a running line number."""

    def __init__(self, handle: IO[bytes], decoder: codecs.IncrementalDecoder, chunk_chars: int) -> None:
        self.handle, self.decoder, self.chunk_chars = handle, decoder, chunk_chars
        self.buf, self.pos, self.line, self.eof = "", 0, 1, False

    def _fill(self) -> bool:
        if self.eof:
            return False
        chunk = self.handle.read(self.chunk_chars)
        text = self.decoder.decode(chunk, final=not chunk)
        if not chunk:
            self.eof = True
        if self.pos > self.chunk_chars:
            self.buf, self.pos = self.buf[self.pos :], 0
        self.buf += text
        return bool(chunk) or bool(text)

    def peek(self) -> str:
        while self.pos >= len(self.buf):
            if not self._fill():
                return ""
        return self.buf[self.pos]

    def advance(self, n: int) -> None:
        self.line += self.buf.count("\n", self.pos, self.pos + n)
        self.pos += n

    def skip_space(self) -> None:
        while True:
            ch = self.peek()
            if ch and ch in " \t\r\n\ufeff":
                start = self.pos
                end = start
                while end < len(self.buf) and self.buf[end] in " \t\r\n\ufeff":
                    end += 1
                self.advance(end - start)
            else:
                return

    def decode(self, decoder: json.JSONDecoder) -> tuple[Any, str]:
        while True:
            try:
                data, end = decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError:
                if self._fill():
                    continue
                raise
            if end >= len(self.buf) and not self.eof and self._fill():
                continue  # a number could continue in the next chunk
            text = self.buf[self.pos : end]
            self.advance(end - self.pos)
            return data, text

    def rest(self) -> str:
        while self._fill():
            pass
        return self.buf[self.pos : self.pos + 2000]


def iter_parquet(path: Path, batch_rows: int = 4096) -> Iterator[RawRow]:
    import pyarrow.parquet as pq

    row = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
        for data in batch.to_pylist():
            yield RawRow(row, None, data)
            row += 1


def iter_hf(name: str, split: str = "train") -> Iterator[RawRow]:
    """A `save_to_disk` folder, or a hub id streamed (nothing is downloaded up front)."""
    try:
        import datasets
    except ImportError as exc:
        from longsift.errors import MissingDependencyError

        raise MissingDependencyError("datasets", "hf", "reading Hugging Face datasets") from exc
    if Path(name).is_dir():
        loaded = datasets.load_from_disk(name)
        dataset = loaded[split] if isinstance(loaded, datasets.DatasetDict) else loaded
    else:
        dataset = datasets.load_dataset(name, split=split, streaming=True)
    for row, data in enumerate(dataset):
        yield RawRow(row, None, dict(data))
