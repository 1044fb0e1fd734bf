"""The load stage: stream Examples out of a source; every bad record goes to the quarantine, none is lost."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from longsift import formats
from longsift.formats.rows import RawRow
from longsift.formats.schema import RecordError, has_own_id
from longsift.records import Example

DEFAULT_MAX_RECORD_BYTES = 4 << 20


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record that was not loaded, and exactly why."""

    source: str
    row: int
    line: int | None
    reason: str
    raw: Any = None

    def message(self) -> str:
        where = f"{self.source}:{self.line}" if self.line is not None else self.source
        return f"{where} (row {self.row}): {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "row": self.row, "line": self.line, "reason": self.reason, "record": self.raw}


@dataclass
class LoadReport:
    source: str
    layout: str = ""
    container: str = ""
    read: int = 0
    kept: int = 0
    quarantined: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    rejections: list[Rejection] = field(default_factory=list)
    quarantine_path: Path | None = None

    def summary(self) -> str:
        line = f"{self.source}: rows read {self.read} = kept {self.kept} + quarantined {self.quarantined}"
        if self.quarantined and self.quarantine_path:
            line += f" (see {self.quarantine_path})"
        return line


class Quarantine:
    """Where rejected records go: a JSON-lines file (opened on the first rejection) and/or a list."""

    def __init__(self, path: str | Path | None = None, keep: int = 1000) -> None:
        self.path = Path(path) if path else None
        self.keep = keep
        self._handle: IO[bytes] | None = None

    def add(self, rejection: Rejection, report: LoadReport) -> None:
        report.quarantined += 1
        report.reasons[rejection.reason.split(":")[0]] += 1
        if len(report.rejections) < self.keep:
            report.rejections.append(rejection)
        if self.path is not None:
            if self._handle is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._handle = self.path.open("wb")
                report.quarantine_path = self.path
            self._handle.write(orjson.dumps(rejection.to_dict(), default=str) + b"\n")

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class RecordStream:
    """Iterate it for Examples; `report` is complete once iteration ends.

    Duplicate ids are only checked for sources that carry their own ids (row numbers cannot clash).
    """

    def __init__(
        self,
        source: str | Path,
        format: str | None = None,
        *,
        quarantine: str | Path | Quarantine | None = None,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
        split: str = "train",
        on_reject: Callable[[Rejection], None] | None = None,
        check_duplicate_ids: bool = True,
    ) -> None:
        self.source = str(source)
        self.container = formats.container_of(self.source, format)
        self.layout = format if format in formats.SCHEMAS else None
        self.quarantine = quarantine if isinstance(quarantine, Quarantine) else Quarantine(quarantine)
        self.max_record_bytes = max_record_bytes
        self.split = split
        self.on_reject = on_reject
        self.check_duplicate_ids = check_duplicate_ids
        self.report = LoadReport(self.source, container=self.container)

    def __iter__(self) -> Iterator[Example]:
        seen_ids: set[str] = set()
        parse = self._parser()
        try:
            for raw in formats.iter_raw_rows(self.source, self.container, self.split):
                self.report.read += 1
                example = self._example(raw, parse, seen_ids)
                if example is not None:
                    self.report.kept += 1
                    yield example
        finally:
            self.quarantine.close()

    def _parser(self) -> Callable[[dict[str, Any]], Callable[..., Example]]:
        fixed = formats.SCHEMAS.get(self.layout) if self.layout else None

        def pick(data: dict[str, Any]) -> Callable[..., Example]:
            nonlocal fixed
            if fixed is None:
                fixed = formats.schema_for(data, self.source)
                self.report.layout = fixed.NAME
            return fixed.parse

        if fixed is not None:
            self.report.layout = fixed.NAME
        return pick

    def _example(
        self, raw: RawRow, parse: Callable[[dict[str, Any]], Callable[..., Example]], seen: set[str]
    ) -> Example | None:
        if raw.data is None:
            self._reject(raw, raw.error or "unreadable record", raw.raw)
            return None
        if raw.size > self.max_record_bytes:
            reason = f"record is {raw.size} bytes, over the limit of {self.max_record_bytes} (--max-record-bytes)"
            self._reject(raw, reason, None)
            return None
        try:
            example = parse(raw.data)(raw.data, raw.row, self.source)
        except RecordError as exc:
            self._reject(raw, str(exc), raw.data)
            return None
        except formats.UnknownFormatError:
            if self.report.layout:
                raise
            self._reject(raw, f"unknown record layout with fields {sorted(raw.data)[:12]}", raw.data)
            return None
        if self.check_duplicate_ids and has_own_id(raw.data):
            if example.id in seen:
                self._reject(raw, f"duplicate id {example.id!r}", raw.data)
                return None
            seen.add(example.id)
        return example

    def _reject(self, raw: RawRow, reason: str, data: Any) -> None:
        rejection = Rejection(self.source, raw.row, raw.line, reason, data)
        self.quarantine.add(rejection, self.report)
        if self.on_reject is not None:
            self.on_reject(rejection)


def load(source: str | Path, format: str | None = None, **options: Any) -> RecordStream:
    """Stream Examples from `source` (file, folder or hub id). See RecordStream for options."""
    return RecordStream(source, format, **options)


def load_all(source: str | Path, format: str | None = None, **options: Any) -> tuple[list[Example], LoadReport]:
    stream = RecordStream(source, format, **options)
    return list(stream), stream.report


def print_rejection(rejection: Rejection) -> None:
    print(f"quarantined {rejection.message()}", file=sys.stderr)
