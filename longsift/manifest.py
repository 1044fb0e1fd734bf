"""One manifest for every command and pipeline stage: what ran, with which options, on what, producing what.

    write_manifest(output, command="select", options=opts, inputs={"source": src}, outputs={"output": output})

A manifest is written last and atomically, beside a file output (`x.json` -> `x.manifest.json`, see `manifest_path`)
or inside a folder output (`DIR/manifest.json`). It records:

- `command` (and `stage`, the recipe's stage name, for pipeline stages) and the resolved `options` as JSON (never
  argv, never secrets: callers pass their resolved options model or dict);
- `inputs`, declared by the caller by role: a file by size and sha256, a folder (a model directory) by a tree hash
  over its files, anything not on disk (a hub id) by its name, unhashed;
- `outputs` (name -> path) and `files`: every file under them with size, sha256 and the stat fields that let a
  later check trust the hash without reading the file again (`verify`);
- `summary` (what the command reports about its work), `versions` (longsift, Python, key libraries present) and
  the time it ran.

File hashes are cached (`HashCache`, a JSON file in the user cache folder) by path, size, mtime, ctime and inode, so a
rerun does not read unchanged multi-GB weights again; any change to one of these rehashes the file.

A file that does not validate against `Manifest` (an older schema, a hand edit, a torn write) is no manifest:
`read_manifest` returns None and the pipeline runs the stage again.
"""

from __future__ import annotations

import hashlib
import os
import platform
import time
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from longsift.errors import ConfigError
from longsift.outputs import TEMP_PREFIX, side_path, write_bytes

VERSION = 1
MANIFEST = "manifest.json"
LIBRARIES = ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "tokenizers", "nltk", "httpx", "vllm")
_CHUNK = 1 << 20


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileInput(_Record):
    kind: Literal["file"] = "file"
    role: str
    path: str
    size: int
    sha256: str

    @property
    def given(self) -> str:
        return self.path


class FolderInput(_Record):
    """A folder (a model, a dataset folder): `sha256` over its files' relative names and hashes, sorted."""

    kind: Literal["folder"] = "folder"
    role: str
    path: str
    files: int
    size: int
    sha256: str

    @property
    def given(self) -> str:
        return self.path


class NameInput(_Record):
    """Not on disk (a hub id, a built-in name): recorded as given, not hashed."""

    kind: Literal["name"] = "name"
    role: str
    name: str

    @property
    def given(self) -> str:
        return self.name


Input = Annotated[FileInput | FolderInput | NameInput, Field(discriminator="kind")]


class OutputFile(_Record):
    size: int
    sha256: str
    mtime_ns: int
    ctime_ns: int
    ino: int


class Manifest(_Record):
    version: Literal[1] = 1  # VERSION
    command: str
    stage: str | None = None
    status: Literal["complete"] = "complete"
    options: dict[str, Any]
    inputs: list[Input]
    outputs: dict[str, str]
    files: dict[str, OutputFile]  # path relative to the manifest's root (see `root_of`) -> what was written
    summary: dict[str, Any] = {}
    versions: dict[str, str]
    started_at: str | None = None
    finished_at: str
    seconds: float | None = None

    def inputs_with_role(self, role: str) -> list[FileInput | FolderInput | NameInput]:
        return [i for i in self.inputs if i.role == role]


InputValue = str | Path | None
Declared = Mapping[str, InputValue | Sequence[InputValue]]


# -- where --------------------------------------------------------------------------------------------------------


def manifest_path(target: str | Path) -> Path:
    """A folder's manifest is `DIR/manifest.json`; a file's is beside it: `x.jsonl` -> `x.manifest.json`."""
    target = Path(target)
    return target / MANIFEST if target.is_dir() else side_path(target, MANIFEST)


def root_of(path: Path) -> Path:
    """The folder a manifest's `files` are relative to: the one it lies in."""
    return path.parent


# -- writing ------------------------------------------------------------------------------------------------------


def write_manifest(
    target: str | Path,
    *,
    command: str,
    options: BaseModel | Mapping[str, Any],
    inputs: Declared | list[FileInput | FolderInput | NameInput] | None = None,
    outputs: Mapping[str, str | Path | None] | None = None,
    summary: Mapping[str, Any] | None = None,
    stage: str | None = None,
    root: Path | None = None,
    started: float | None = None,
    path: Path | None = None,
    cache: HashCache | None = None,
) -> Manifest:
    """Describe a finished command into `manifest_path(target)` (or `path`). `inputs`: role -> path or name (or
    inputs already described, hashed before the command ran); `root`: what `files` are relative to (default the
    manifest's folder; a pipeline stage passes its run folder)."""
    path = path or manifest_path(target)
    inputs, outputs = inputs or {}, outputs or {}
    cache = cache or HashCache()
    try:
        record = Manifest(
            command=command, stage=stage, options=json_options(options),
            inputs=inputs if isinstance(inputs, list) else describe_inputs(inputs, cache),
            outputs={key: str(value) for key, value in outputs.items() if value is not None},
            files=describe_outputs(root or root_of(path), outputs, cache, skip=path),
            summary=_json(dict(summary or {})), versions=library_versions(),
            started_at=_iso(started) if started else None, finished_at=_iso(time.time()),
            seconds=round(time.time() - started, 3) if started else None,
        )  # fmt: skip
    finally:
        cache.save()
    save(record, path)
    return record


def save(record: Manifest, path: Path) -> None:
    write_bytes(path, orjson.dumps(record.model_dump(mode="json"), option=orjson.OPT_INDENT_2) + b"\n")


def json_options(options: BaseModel | Mapping[str, Any]) -> dict[str, Any]:
    """Resolved options as plain JSON (paths as strings): what is stored and what a rerun compares."""
    data = options.model_dump(mode="json") if isinstance(options, BaseModel) else dict(options)
    return _json(data)


def _json(value: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS))
    return data


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def library_versions(names: tuple[str, ...] = LIBRARIES) -> dict[str, str]:
    """longsift, Python and each of `names` that is installed."""
    from longsift import __version__

    versions = {"longsift": __version__, "python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


# -- inputs -------------------------------------------------------------------------------------------------------


def describe_inputs(declared: Declared, cache: HashCache | None = None) -> list[FileInput | FolderInput | NameInput]:
    """Each declared input by what it is: a file, a folder, or a name that is not on disk. Without a `cache`, one
    of the user cache folder is used and saved."""
    own = cache is None
    cache = cache or HashCache()
    found: list[FileInput | FolderInput | NameInput] = []
    for role, values in declared.items():
        many = values if isinstance(values, Sequence) and not isinstance(values, str) else [values]
        found += [describe_input(role, value, cache) for value in many if value is not None and str(value) != ""]
    if own:
        cache.save()
    return found


def describe_input(role: str, value: str | Path, cache: HashCache) -> FileInput | FolderInput | NameInput:
    path = Path(value)
    if path.is_file():
        return FileInput(role=role, path=str(value), size=path.stat().st_size, sha256=cache.sha256(path))
    if path.is_dir():
        files = files_under(path)
        digest = hashlib.sha256()
        for file in files:
            digest.update(f"{file.relative_to(path).as_posix()}\0{cache.sha256(file)}\n".encode())
        size = sum(file.stat().st_size for file in files)
        return FolderInput(role=role, path=str(value), files=len(files), size=size, sha256=digest.hexdigest())
    return NameInput(role=role, name=str(value))


def files_under(path: Path) -> list[Path]:
    """A folder's files, temporary files of unfinished writes aside, in a stable order."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(TEMP_PREFIX))


# -- outputs ------------------------------------------------------------------------------------------------------


def describe_outputs(
    root: Path, outputs: Mapping[str, str | Path | None], cache: HashCache | None = None, skip: Path | None = None
) -> dict[str, OutputFile]:
    """{path relative to `root`: size, sha256, stat} of every file under the outputs (`skip`: the manifest)."""
    cache = cache or HashCache()
    files: dict[str, OutputFile] = {}
    skipped = skip.resolve() if skip else None
    for key, value in outputs.items():
        if value is None:
            continue
        path = Path(value)
        if not path.exists():
            raise ConfigError(f"the output {key!r} ({path}) was not written")
        for file in files_under(path):
            if file.resolve() != skipped:
                files[_relative(file, root)] = OutputFile(**stat_of(file), sha256=cache.sha256(file))
    return files


def _relative(file: Path, root: Path) -> str:
    resolved, base = file.resolve(), root.resolve()
    return resolved.relative_to(base).as_posix() if resolved.is_relative_to(base) else resolved.as_posix()


def stat_of(file: Path) -> dict[str, int]:
    st = file.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns, "ino": st.st_ino}


def verify(record: Manifest, root: Path, path: Path, *, confined: bool = True) -> str | None:
    """Why the files on disk do not match the manifest at `path` (None when they all do).

    - every recorded file exists, as a file, with the recorded size (a different size: no hashing needed);
    - when its size, mtime, ctime and inode all equal the record, the recorded sha256 is trusted (nothing wrote to
      it: even restoring an mtime by hand changes the ctime);
    - otherwise it is hashed again; a sha256 that differs is a mismatch. When every hash matches (a copied
      folder), the stat fields are refreshed in the manifest so the next check is cheap.
    Files added under an output folder later are not outputs and are ignored. `confined`: every file must lie
    under `root` (a pipeline stage's files stay in its run folder).
    """
    for key, value in record.outputs.items():
        if not Path(value).exists():
            return f"its output {key!r} ({value}) is missing"
    refreshed: dict[str, OutputFile] = {}
    base = root.resolve()
    for name, recorded in record.files.items():
        file = root / name
        if confined and not file.resolve().is_relative_to(base):
            return f"its manifest names {name}, outside {root}"
        if not file.is_file():
            return f"{name} is missing"
        now = stat_of(file)
        if now["size"] != recorded.size:
            return f"{name} changed size ({recorded.size} -> {now['size']} bytes)"
        if all(now[key] == getattr(recorded, key) for key in now):
            continue
        if sha256_file(file) != recorded.sha256:
            return f"{name} changed (sha256 differs from the manifest)"
        refreshed[name] = OutputFile(**now, sha256=recorded.sha256)
    if refreshed:
        save(record.model_copy(update={"files": {**record.files, **refreshed}}), path)
    return None


# -- reading ------------------------------------------------------------------------------------------------------


def read_manifest(path: str | Path) -> Manifest | None:
    """The manifest at `path` (a manifest file, or a folder or file output it describes); None when there is none
    or it is not one of this schema (older, edited, torn): such a manifest proves nothing."""
    path = Path(path)
    if path.name != MANIFEST and not path.name.endswith(f".{MANIFEST}"):
        path = manifest_path(path)
    try:
        return Manifest.model_validate_json(path.read_bytes())
    except (OSError, ValidationError, ValueError):
        return None


# -- the hash cache -----------------------------------------------------------------------------------------------


def cache_dir() -> Path:
    """LONGSIFT_CACHE_DIR, else $XDG_CACHE_HOME/longsift, else ~/.cache/longsift."""
    if explicit := os.environ.get("LONGSIFT_CACHE_DIR"):
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "longsift"


class HashCache:
    """sha256 of files by (path, size, mtime_ns, ctime_ns, inode), kept in a JSON file between runs.

    Written atomically, merged with what other processes saved meanwhile (a lost entry only costs a rehash); an
    unreadable cache is an empty one and an unwritable one is not saved. `hashed` counts the files read.
    """

    MAX_ENTRIES = 200_000

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or cache_dir() / "file-hashes.json"
        self.entries = self._load()
        self.added: dict[str, dict[str, Any]] = {}
        self.hashed = 0

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            data = orjson.loads(self.path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return {}
        entries = data.get("files") if isinstance(data, dict) and data.get("version") == 1 else None
        return {k: v for k, v in entries.items() if isinstance(v, dict)} if isinstance(entries, dict) else {}

    def sha256(self, file: Path) -> str:
        key = str(file.resolve())
        now = stat_of(file)
        known = self.entries.get(key)
        if known is not None and all(known.get(k) == v for k, v in now.items()) and "sha256" in known:
            return str(known["sha256"])
        digest = sha256_file(file)
        self.hashed += 1
        self.entries[key] = self.added[key] = {**now, "sha256": digest}
        return digest

    def remember(self, file: Path, digest: str) -> None:
        """The sha256 of a file this process just wrote, hashed as it wrote the bytes (no second read)."""
        key = str(file.resolve())
        self.entries[key] = self.added[key] = {**stat_of(file), "sha256": digest}

    def save(self) -> None:
        if not self.added:
            return
        entries = {**self._load(), **self.added}
        if len(entries) > self.MAX_ENTRIES:  # keep the newest
            entries = dict(list(entries.items())[-self.MAX_ENTRIES :])
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_bytes(self.path, orjson.dumps({"version": 1, "files": entries}))
        except OSError:
            return  # a cache that cannot be written only costs hashing again
        self.added = {}


def sha256_file(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()
