"""The load stage: stream Examples out of a source; every bad record goes to the quarantine, none is lost."""

from __future__ import annotations

import contextlib
import dataclasses
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from longsift import formats
from longsift.errors import DataError
from longsift.formats import rows
from longsift.formats.rows import DEFAULT_MAX_RECORD_BYTES, Limits, RawRow
from longsift.formats.schema import RecordError, has_own_id
from longsift.outputs import atomic_output
from longsift.records import Example

__all__ = ["DEFAULT_MAX_RECORD_BYTES", "Limits", "LoadReport", "Quarantine", "RecordStream", "Rejection", "load"]


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
    """Where rejected records go: a JSON-lines file and/or a list (the first `keep` rejections).

    The file is written to a temporary file beside it and renamed into place by `close()`, so it always
    describes one whole run: a run with no rejection removes the previous run's file, and `abort()` (a run
    that failed) leaves the previous file as it was."""

    def __init__(self, path: str | Path | None = None, keep: int = 1000) -> None:
        self.path = Path(path) if path else None
        self.keep = keep
        self._writing: contextlib.ExitStack | None = None
        self._handle: IO[bytes] | None = None
        self.count = 0

    def add(self, rejection: Rejection, report: LoadReport) -> None:
        report.quarantined += 1
        report.reasons[rejection.reason.split(":")[0]] += 1
        self.count += 1
        if len(report.rejections) < self.keep:
            report.rejections.append(rejection)
        if self.path is not None:
            if self._handle is None:
                self._writing = contextlib.ExitStack()
                self._handle = self._writing.enter_context(atomic_output(self.path, "wb"))
            report.quarantine_path = self.path
            self._handle.write(orjson.dumps(rejection.to_dict(), default=str) + b"\n")

    def close(self) -> None:
        """The run is complete: put its quarantine file in place (or remove a stale one: no rejections)."""
        if self._writing is not None:
            writing, self._writing, self._handle = self._writing, None, None
            writing.close()
        elif self.path is not None and self.count == 0:
            self.path.unlink(missing_ok=True)

    def abort(self) -> None:
        """The run failed: drop what this run wrote, keep the previous run's file."""
        if self._writing is not None:
            writing, self._writing, self._handle = self._writing, None, None
            writing.__exit__(DataError, DataError(str(self.path), "aborted"), None)


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
        max_record_bytes: int | None = None,
        limits: Limits | None = None,
        split: str = "train",
        on_reject: Callable[[Rejection], None] | None = None,
        check_duplicate_ids: bool = True,
        collect_ids: bool = False,
    ) -> None:
        self.source = str(source)
        self.limits = limits or Limits()
        if max_record_bytes is not None:
            self.limits = dataclasses.replace(self.limits, max_record_bytes=max_record_bytes)
        path = Path(self.source)
        self._opened = rows.Opened(path, self.limits) if path.is_file() else None  # the one handle it is read by
        try:
            self.container = formats.container_of(self.source, format, self._opened)
        except BaseException:
            self.close()
            raise
        self.layout = format if format in formats.SCHEMAS else None
        self.quarantine = quarantine if isinstance(quarantine, Quarantine) else Quarantine(quarantine)
        self.max_record_bytes = self.limits.record_bytes
        self.split = split
        self.on_reject = on_reject
        self.check_duplicate_ids = check_duplicate_ids
        self.own_ids: list[tuple[int, int | None, str]] | None = [] if collect_ids else None  # (row, line, id)
        self.report = LoadReport(self.source, container=self.container)

    def __iter__(self) -> Iterator[Example]:
        seen_ids: set[str] = set()
        parse = self._parser()
        try:
            opened, self._opened = self._opened, None  # a second iteration opens the file anew
            for raw in formats.iter_raw_rows(self.source, self.container, self.split, self.limits, opened):
                self.report.read += 1
                example = self._example(raw, parse, seen_ids)
                if example is not None:
                    self.report.kept += 1
                    yield example
        except GeneratorExit:
            self.quarantine.close()  # the consumer stopped early: what was read is reported
            raise
        except BaseException:
            self.quarantine.abort()
            raise
        self.quarantine.close()

    def close(self) -> None:
        """Release the file when the stream will not be iterated (iteration closes it at its end)."""
        opened = getattr(self, "_opened", None)  # None too when __init__ failed before opening
        if opened is not None:
            opened.close()
            self._opened = None

    def __del__(self) -> None:
        self.close()

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
        example, reason, data = judge(raw, parse, self.max_record_bytes, self.source, lambda: bool(self.report.layout))
        if example is None:
            self._reject(raw, reason, data)
            return None
        if self.check_duplicate_ids and has_own_id(raw.data or {}):
            if example.id in seen:
                self._reject(raw, f"duplicate id {example.id!r}", raw.data)
                return None
            seen.add(example.id)
            if self.own_ids is not None:
                self.own_ids.append((raw.row, raw.line, example.id))
        return example

    def _reject(self, raw: RawRow, reason: str, data: Any) -> None:
        rejection = Rejection(self.source, raw.row, raw.line, reason, data)
        self.quarantine.add(rejection, self.report)
        if self.on_reject is not None:
            self.on_reject(rejection)


def judge(
    raw: RawRow, parse: Callable[[dict[str, Any]], Callable[..., Example]], max_record_bytes: int, source: str,
    layout_known: Callable[[], bool],
) -> tuple[Example | None, str, Any]:  # fmt: skip
    """One row, as the load stage decides it: (its Example, "", None), or (None, why not, what the quarantine
    keeps of it). Duplicate ids are the caller's (they need every earlier row); `parse(data)` picks the layout."""
    if raw.data is None:
        return None, raw.error or "unreadable record", raw.raw
    if raw.size > max_record_bytes:
        return None, f"record is {raw.size} bytes, over the limit of {max_record_bytes} (--max-record-bytes)", None
    try:
        return parse(raw.data)(raw.data, raw.row, source), "", None
    except RecordError as exc:
        return None, str(exc), raw.data
    except formats.UnknownFormatError:
        if layout_known():
            raise
        return None, f"unknown record layout with fields {sorted(raw.data)[:12]}", raw.data


def load(source: str | Path, format: str | None = None, **options: Any) -> RecordStream:
    """Stream Examples from `source` (file, folder or hub id). See RecordStream for options."""
    return RecordStream(source, format, **options)


def load_all(source: str | Path, format: str | None = None, **options: Any) -> tuple[list[Example], LoadReport]:
    stream = RecordStream(source, format, **options)
    return list(stream), stream.report
