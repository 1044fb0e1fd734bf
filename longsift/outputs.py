"""Where longsift writes: every output appears whole or not at all, never on top of an input.

- `atomic_output(path)` writes to a temporary file in the same folder and renames it into place only when the
  block ends without error, so a killed command leaves the previous output or the new complete one.
- `side_path(output, "quarantine.jsonl")` names side files by the output's whole name (`x.v1.json` ->
  `x.v1.quarantine.jsonl`), so two outputs never share a side file.
- `guard_paths(inputs, outputs)` refuses any output that is an input (after resolving links and `..`), and
  checks that each output's folder can be written before any work starts.
- `unwritable(data, exc)` says which field of a record JSON cannot hold (bytes, a lone surrogate), and
  `finite(data)` turns NaN and infinities into null, so no writer emits invalid JSON.

A temporary file is named `.longsift-tmp-<output name>.<pid>.<random>`: a SIGKILL leaves it behind, and the next
write of the same output removes those of processes that are gone.
"""

from __future__ import annotations

import contextlib
import fnmatch
import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Literal, overload

from longsift.errors import DataError, UsageError

COMPRESSED = (".gz", ".bz2", ".xz", ".zst")
TEMP_PREFIX = ".longsift-tmp-"
PROBE = "probe"  # the name check_writable's probe files take in place of an output's


def side_path(output: str | Path, suffix: str) -> Path:
    """`x.v1.json` + `quarantine.jsonl` -> `x.v1.quarantine.jsonl`: only the output's own extension is dropped."""
    path = Path(output)
    name = path.name
    for ext in COMPRESSED:
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    stem, dot, _ = name.rpartition(".")
    return path.with_name(f"{stem if dot and stem else name}.{suffix}")


@overload
def atomic_output(path: str | Path, mode: Literal["wb"] = "wb") -> contextlib.AbstractContextManager[IO[bytes]]: ...
@overload
def atomic_output(path: str | Path, mode: Literal["w"]) -> contextlib.AbstractContextManager[IO[str]]: ...
def atomic_output(path: str | Path, mode: str = "wb") -> contextlib.AbstractContextManager[Any]:
    """A handle on a temporary file beside `path`; on success it is synced and renamed onto `path`."""
    return _atomic(Path(path), mode)


@contextlib.contextmanager
def _atomic(path: Path, mode: str) -> Iterator[IO[Any]]:
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{path.name}.{os.getpid()}.", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        text = "b" not in mode
        with os.fdopen(fd, mode, encoding="utf-8" if text else None, newline="" if text else None) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        _keep_mode(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class Writeback:
    """Starts the disk writes of a large output while it is still being written (Linux `sync_file_range`), so
    the final fsync of the atomic writer (which stays: it is what makes the output durable before the rename)
    finds little left to write, instead of all of it at once; elsewhere, or for small outputs, it does nothing.

    `wrote(n)` after each write of n bytes; every `step` bytes the pages written since the last call are sent
    to the disk without waiting for them (SYNC_FILE_RANGE_WRITE)."""

    def __init__(self, fd: int, step: int = 64 << 20) -> None:
        self.fd, self.step, self.written, self.started = fd, step, 0, 0
        self.call = _sync_file_range()

    def wrote(self, size: int) -> None:
        self.written += size
        if self.call is not None and self.written - self.started >= self.step:
            end = self.written & ~0xFFFF  # whole pages only: the last one is still being filled
            if self.call(self.fd, self.started, end - self.started, 2) != 0:  # 2: SYNC_FILE_RANGE_WRITE
                self.call = None  # refused (e.g. a filesystem without it): the final fsync does it all
            self.started = end


def _sync_file_range() -> Any:
    import sys

    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        call = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    call.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    call.restype = ctypes.c_int
    return call


def remove_stale_temps(path: Path) -> list[Path]:
    """Temporary files of `path` (and write probes in its folder) left by killed processes (their pid is gone);
    a live writer's are kept."""
    prefixes = (f"{TEMP_PREFIX}{path.name}.", f"{TEMP_PREFIX}{PROBE}.")
    removed = []
    with contextlib.suppress(OSError), os.scandir(path.parent) as entries:
        for entry in entries:
            prefix = next((p for p in prefixes if entry.name.startswith(p)), "")
            pid, dot, rest = entry.name[len(prefix) :].partition(".") if prefix else ("", "", "")
            if pid.isdigit() and dot and "." not in rest and not _alive(int(pid)):  # <pid>.<random>, nothing more
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _keep_mode(path: Path, tmp: Path) -> None:
    """mkstemp makes 0600 files; give the output the mode a plain open() would (umask applied)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_output(path) as handle:
        handle.write(data)


def write_jsonl(records: Iterable[Any], path: str | Path) -> int:
    """Records (anything with `to_dict()`) one JSON object a line, whole or not at all; returns the count."""
    import orjson

    count = 0
    with atomic_output(path) as handle:
        for record in records:
            handle.write(orjson.dumps(record.to_dict()) + b"\n")
            count += 1
    return count


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def same_file(a: Path, b: Path) -> bool:
    """True when `a` and `b` name one file: equal after resolving links and `..`, or the same inode."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def guard_paths(inputs: Iterable[str | Path | None], outputs: Iterable[str | Path | None]) -> None:
    """Refuse outputs that are inputs, and outputs whose folder cannot be written: before any work starts. A glob
    or `@FILE` of shards (--executor ray) is its listed files, and a glob refuses the outputs it would list too."""
    input_paths: list[Path] = []
    patterns: list[str] = []
    for given in inputs:
        if given is None:
            continue
        if Path(given).exists():
            input_paths.append(Path(given))
        elif isinstance(given, str) and (given.startswith("@") or _local_glob(given)):
            patterns += [given.removeprefix("file://")] if _local_glob(given) else []
            input_paths += _listed_shards(given)
    seen: list[Path] = []
    for out in outputs:
        if out is None:
            continue
        out = Path(out)
        for src in input_paths:
            if same_file(out, src) or (src.is_dir() and _inside(out, src)):
                raise UsageError(f"{out}: this output is the input {src}; choose another output path")
        for pattern in patterns:
            if _matches(out, pattern):
                raise UsageError(f"{out}: this output is among the input shards {pattern}; choose another output path")
        for earlier in seen:
            if same_file(out, earlier):
                raise UsageError(f"{out}: two outputs of this command are one file; choose distinct paths")
        seen.append(out)
        check_writable(out)


def _local_glob(text: str) -> bool:
    from longsift.exec.shards import is_pattern, is_url

    return is_pattern(text) and (not is_url(text) or text.startswith("file://"))


def _listed_shards(source: str) -> list[Path]:
    """The local files a glob or `@FILE` names (the list file too); none when it lists nothing yet."""
    from longsift.exec.shards import expand, is_url

    try:
        found = expand(source)
    except (DataError, OSError):
        found = []  # the command's own reading says what is wrong with it
    listed = [
        Path(shard.removeprefix("file://")) for shard in found if not is_url(shard) or shard.startswith("file://")
    ]
    return listed + ([Path(source[1:])] if source.startswith("@") else [])


def _matches(output: Path, pattern: str) -> bool:
    """Would a rerun of glob `pattern` list `output`, or the Parquet shards of an output folder?"""
    from longsift.formats.parquet import SHARD_NAME

    wanted = os.path.abspath(pattern)
    for candidate in (os.path.abspath(output), os.path.join(os.path.abspath(output), SHARD_NAME.format(0))):
        if "**" in pattern:  # any depth: `*` across folders too (it may refuse more than the glob would list)
            found = fnmatch.fnmatchcase(candidate, wanted)
        else:
            parts, want = candidate.split(os.sep), wanted.split(os.sep)
            found = len(parts) == len(want) and all(map(fnmatch.fnmatchcase, parts, want))
        if found:
            return True
    return False


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def check_writable(output: str | Path) -> None:
    """The nearest existing folder of `output` must be writable, and `output` must not be a folder."""
    path = Path(output)
    if path.is_dir():
        raise UsageError(f"{path}: is a folder; give a file path for this output")
    folder = path.parent
    while not folder.exists():
        if folder.parent == folder:
            break
        folder = folder.parent
    if not folder.is_dir():
        raise UsageError(f"{path}: {folder} is not a folder")
    try:  # try it: os.access says yes to root on a read-only mount
        fd, probe = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{PROBE}.{os.getpid()}.", dir=folder)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write in {folder} ({exc.strerror}); choose another output path") from None
    os.close(fd)
    os.unlink(probe)


def finite(data: Any) -> Any:
    """`data` with NaN and infinities as None (JSON has no such numbers; orjson writes null for them too)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: finite(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [finite(value) for value in data]
    return data


def record_error(
    source: str, row: int | None, output: str | Path, data: Any, exc: BaseException | None = None
) -> DataError:
    """The one-line error for a record that cannot be written: where it came from, which field, what to do."""
    return DataError(source, f"cannot write this record to {output}: {unwritable(data, exc)}", row=row)


def unwritable(data: Any, exc: BaseException | None = None) -> str:
    """Why `data` cannot be written as JSON/UTF-8, naming the first offending field and what to do."""
    found = _offending(data, "")
    if found is None:
        return f"cannot be written ({type(exc).__name__}: {exc})"
    field, value = found
    where = f"field {field}" if field else "the record"
    if isinstance(value, bytes | bytearray | memoryview):
        return (f"{where} holds bytes (a binary column?), which JSON cannot hold: decode or drop that field "
                "before writing")  # fmt: skip
    if isinstance(value, str):
        return (f"{where} holds a lone surrogate ({_surrogate(value)}), which UTF-8 cannot encode: fix that text "
                "in the source or drop the record")  # fmt: skip
    if isinstance(value, int):
        return f"{where} holds an integer beyond 64 bits, which this format cannot hold: store it as a string"
    return f"{where} holds a {type(value).__name__}, which JSON cannot hold: convert or drop that field"


def lone_surrogate(data: Any) -> str | None:
    """The field of `data` holding a lone surrogate (json.dumps escapes those silently), else None."""
    found = _offending(data, "", big_ints=False)
    return found[0] if found is not None and isinstance(found[1], str) else None


def _offending(data: Any, field: str, depth: int = 0, big_ints: bool = True) -> tuple[str, Any] | None:
    if isinstance(data, str):
        return (field, data) if _surrogate(data) else None
    if isinstance(data, int) and not isinstance(data, bool):
        return (field, data) if big_ints and not -(1 << 63) <= data < (1 << 64) else None
    if isinstance(data, bool | float) or data is None:
        return None
    if depth > 64:
        return None
    if isinstance(data, dict):
        for key, value in data.items():
            found = _offending(value, f"{field}.{key}" if field else str(key), depth + 1, big_ints)
            if found is not None:
                return found
        return None
    if isinstance(data, list | tuple):
        for index, value in enumerate(data):
            found = _offending(value, f"{field}[{index}]", depth + 1, big_ints)
            if found is not None:
                return found
        return None
    return field, data


def _surrogate(text: str) -> str:
    """The first lone surrogate of `text` as an escape (empty when there is none)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"\\u{ord(text[exc.start]):04x}"
    return ""
