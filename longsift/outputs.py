"""Where longsift writes: every output appears whole or not at all, never on top of an input.

- `atomic_output(path)` writes to a temporary file in the same folder and renames it into place only when the
  block ends without error, so a killed command leaves the previous output or the new complete one.
- `side_path(output, "quarantine.jsonl")` names side files by the output's whole name (`x.v1.json` ->
  `x.v1.quarantine.jsonl`), so two outputs never share a side file.
- `guard_paths(inputs, outputs)` refuses any output that is an input (after resolving links and `..`), and
  checks that each output's folder can be written before any work starts.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Literal, overload

from longsift.errors import UsageError

COMPRESSED = (".gz", ".bz2", ".xz", ".zst")
TEMP_PREFIX = ".longsift-tmp-"


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
    fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX + path.name + ".", dir=path.parent)
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


def _keep_mode(path: Path, tmp: Path) -> None:
    """mkstemp makes 0600 files; give the output the mode a plain open() would (umask applied)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_output(path) as handle:
        handle.write(data)


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


def guard_paths(inputs: Iterable[str | Path], outputs: Iterable[str | Path]) -> None:
    """Refuse outputs that are inputs, and outputs whose folder cannot be written: before any work starts."""
    input_paths = [Path(p) for p in inputs if p is not None and Path(p).exists()]
    seen: list[Path] = []
    for out in outputs:
        if out is None:
            continue
        out = Path(out)
        for src in input_paths:
            if same_file(out, src) or (src.is_dir() and _inside(out, src)):
                raise UsageError(f"{out}: this output is the input {src}; choose another output path")
        for earlier in seen:
            if same_file(out, earlier):
                raise UsageError(f"{out}: two outputs of this command are one file; choose distinct paths")
        seen.append(out)
        check_writable(out)


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
        fd, probe = tempfile.mkstemp(prefix=TEMP_PREFIX + "probe.", dir=folder)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write in {folder} ({exc.strerror}); choose another output path") from None
    os.close(fd)
    os.unlink(probe)
