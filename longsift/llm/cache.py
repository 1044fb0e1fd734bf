"""The on-disk record of every call: SQLite in WAL mode, one row per request key, committed as each answer lands.

A row holds the request (messages + sampling, for audit and export), the raw completion, why it stopped, token
usage, cost, and status: "ok" rows are final and served on every rerun; "failed" rows keep the reason and the
number of attempts but are retried by the next run. Nothing about transport is stored: no URL, header or key;
error texts pass longsift.llm.redact on the way in and on the way out (rows written by older versions).

Processes sharing one cache file pay for a request once: before sending, a process claims the request's key (a
row in `leases`: owner token, host, pid, expiry). Others wait for the owner's answer instead of sending. The owner
renews its leases while the requests are in flight; a lease ends when the answer (or failure) is committed, when it
expires, or at once when its owner's pid is gone on the same host (a killed process). What remains: a request in
flight when its process is SIGKILLed may be paid again by the process that takes it over.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from longsift.errors import ConfigError
from longsift.llm.redact import redact, redact_optional, redact_secrets
from longsift.llm.types import ChatRequest, Completion, Usage

CACHE_FILE = "llm-cache.sqlite"
RUN_CACHE = Path("cache") / "llm.sqlite"  # a recipe run's cache, inside its run folder


def default_location() -> Path:
    """Where every command's LLM cache lives unless --cache says otherwise, and where `llm cache` looks:
    $LONGSIFT_CACHE_DIR/llm/llm-cache.sqlite, else $XDG_CACHE_HOME/longsift/llm/..., else ~/.cache/longsift/llm/."""
    from longsift.manifest import cache_dir

    return cache_dir() / "llm" / CACHE_FILE


def locate(path: str | Path | None) -> Path:
    """The cache file `llm cache --cache PATH` means: a file, a run folder (its RUN_DIR/cache/llm.sqlite), or,
    without a path, the default location."""
    if path is None:
        return default_location()
    path = Path(path)
    return path / RUN_CACHE if path.is_dir() else path


SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    key TEXT PRIMARY KEY,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    request TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    text TEXT,
    choices TEXT,
    finish_reason TEXT,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    cost REAL,
    error TEXT,
    attempts INTEGER NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS calls_status ON calls (status);
CREATE TABLE IF NOT EXISTS leases (
    key TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    expires REAL NOT NULL
);
"""
_LOOKUP_CHUNK = 500


@dataclass(frozen=True, slots=True)
class CacheEntry:
    key: str
    backend: str
    model: str
    request: dict[str, Any]
    status: str
    completion: Completion | None
    cost: float | None
    error: str | None
    attempts: int
    created_at: float
    updated_at: float

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        done = self.completion
        return {
            "key": self.key, "backend": self.backend, "model": self.model, "request": self.request,
            "status": self.status, "text": done.text if done else None,
            "choices": list(done.choices) if done else None, "finish_reason": done.finish_reason if done else None,
            "prompt_tokens": done.usage.prompt_tokens if done else None,
            "completion_tokens": done.usage.completion_tokens if done else None,
            "cost": self.cost, "error": self.error, "attempts": self.attempts,
            "created_at": self.created_at, "updated_at": self.updated_at,
        }  # fmt: skip


class Cache:
    """One SQLite file shared by every stage; safe for several processes (WAL, busy timeout)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = self._open()

    def _open(self, patience: float = 30.0) -> sqlite3.Connection:
        """Connect, switch to WAL and create the tables. Two processes creating one cache at once can get "database
        is locked" from the journal-mode switch, which SQLite does not wait for: retry that until `patience`."""
        deadline = time.monotonic() + patience
        for attempt in range(1, 10_000):
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                # NORMAL in WAL mode: a committed row survives the process being killed (not a power cut).
                db.execute("PRAGMA synchronous=NORMAL")
                db.executescript(SCHEMA)
                return db
            except sqlite3.OperationalError as exc:
                db.close()
                busy = "locked" in str(exc) or "busy" in str(exc)
                if not busy or time.monotonic() > deadline:
                    raise ConfigError(f"{self.path}: not a usable longsift LLM cache ({exc})") from None
                time.sleep(min(0.01 * attempt, 0.5))
            except sqlite3.DatabaseError as exc:
                db.close()
                raise ConfigError(f"{self.path}: not a usable longsift LLM cache ({exc})") from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _execute(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Every statement goes through here: the engine writes from its writer thread, reads from the loop."""
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, key: str) -> CacheEntry | None:
        return self.get_many([key]).get(key)

    def get_many(self, keys: Iterable[str]) -> dict[str, CacheEntry]:
        keys = list(keys)
        found: dict[str, CacheEntry] = {}
        for start in range(0, len(keys), _LOOKUP_CHUNK):
            chunk = keys[start : start + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            for row in self._execute(f"SELECT * FROM calls WHERE key IN ({marks})", chunk):
                entry = _entry(row)
                found[entry.key] = entry
        return found

    def put_ok(
        self, key: str, backend: str, model: str, request: ChatRequest, completion: Completion,
        cost: float | None, attempts: int,
    ) -> None:  # fmt: skip
        usage = completion.usage
        self._upsert(
            key, backend, model, request, "ok", completion.text, orjson.dumps(list(completion.choices)).decode(),
            completion.finish_reason, usage.prompt_tokens, usage.completion_tokens, cost, None, attempts,
        )  # fmt: skip

    def put_rejected(
        self, key: str, backend: str, model: str, request: ChatRequest, completion: Completion, error: str,
        attempts: int,
    ) -> None:  # fmt: skip
        """A reply that came but is no answer (cut off): status failed, the reply kept."""
        usage = completion.usage
        self._upsert(
            key, backend, model, request, "failed", completion.text, orjson.dumps(list(completion.choices)).decode(),
            completion.finish_reason, usage.prompt_tokens, usage.completion_tokens, None, redact(error), attempts,
        )  # fmt: skip

    def put_failed(self, key: str, backend: str, model: str, request: ChatRequest, error: str, attempts: int) -> None:
        error = redact(error)
        self._upsert(key, backend, model, request, "failed", None, None, None, None, None, None, error, attempts)

    def _upsert(self, key: str, backend: str, model: str, request: ChatRequest, *values: Any) -> None:
        """Write the row and end this key's lease, in one transaction."""
        now = time.time()
        body = orjson.dumps({"messages": request.message_dicts(), "sampling": request.sampling.to_dict()}).decode()
        with self._transaction() as db:
            db.execute(
                """INSERT INTO calls VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (key) DO UPDATE SET status=excluded.status, text=excluded.text,
                   choices=excluded.choices, finish_reason=excluded.finish_reason,
                   prompt_tokens=excluded.prompt_tokens, completion_tokens=excluded.completion_tokens,
                   cost=excluded.cost, error=excluded.error, attempts=excluded.attempts,
                   updated_at=excluded.updated_at""",
                (key, backend, model, body, *values, now, now),
            )
            db.execute("DELETE FROM leases WHERE key = ?", (key,))

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # --- leases: one payment per request across processes ------------------------------------------------------

    def claim(self, key: str, owner: Owner, since: float) -> tuple[str, CacheEntry | None]:
        """("mine", None): send it; ("busy", None): another live process is asking; ("done", entry): someone
        wrote this key's row after `since` (the start of the caller's run): that is the answer, send nothing."""
        return self.claim_many([key], owner, since)[key]

    def claim_many(self, keys: Sequence[str], owner: Owner, since: float) -> dict[str, tuple[str, CacheEntry | None]]:
        """`claim` for several keys in one transaction."""
        now = time.time()
        found: dict[str, tuple[str, CacheEntry | None]] = {}
        with self._transaction() as db:
            for key in keys:
                row = db.execute("SELECT * FROM calls WHERE key = ? AND updated_at >= ?", (key, since)).fetchone()
                if row is not None:
                    found[key] = ("done", _entry(row))
                    continue
                lease = db.execute("SELECT owner, host, pid, expires FROM leases WHERE key = ?", (key,)).fetchone()
                if lease is not None and lease[0] != owner.token and _lease_live(lease, now):
                    found[key] = ("busy", None)
                    continue
                db.execute(
                    "INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?, ?)",
                    (key, owner.token, owner.host, owner.pid, now + owner.ttl),
                )
                found[key] = ("mine", None)
        return found

    def renew(self, owner: Owner) -> None:
        self._execute("UPDATE leases SET expires = ? WHERE owner = ?", (time.time() + owner.ttl, owner.token))

    def release(self, owner: Owner) -> None:
        """End every lease of `owner` (its run is over, answered or not)."""
        self._execute("DELETE FROM leases WHERE owner = ?", (owner.token,))

    def leases(self) -> list[tuple[str, str, str, int, float]]:
        return [tuple(row) for row in self._execute("SELECT key, owner, host, pid, expires FROM leases")]

    def entries(self, status: str | None = None, model: str | None = None) -> Iterator[CacheEntry]:
        where, args = _filters(status, model)
        after: tuple[float, str] = (-1.0, "")
        while True:  # in pages, so that an export of a large cache holds neither the lock nor all rows at once
            page = self._execute(
                f"SELECT * FROM calls{where}{' AND' if where else ' WHERE'} (created_at, key) > (?, ?) "
                f"ORDER BY created_at, key LIMIT {_LOOKUP_CHUNK}",
                [*args, *after],
            )
            yield from (_entry(row) for row in page)
            if len(page) < _LOOKUP_CHUNK:
                return
            after = (page[-1][13], page[-1][0])

    def stats(self) -> dict[str, Any]:
        rows = self._execute(
            """SELECT backend, model, status, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(cost),
                      SUM(cost IS NULL AND status = 'ok')
               FROM calls GROUP BY backend, model, status ORDER BY backend, model, status"""
        )
        groups = [
            {"backend": b, "model": m, "status": s, "calls": n, "prompt_tokens": p or 0, "completion_tokens": c or 0,
             "cost": cost, "calls_without_price": int(unpriced or 0)}
            for b, m, s, n, p, c, cost, unpriced in rows
        ]  # fmt: skip
        size = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*") if p.is_file())
        return {
            "path": str(self.path),
            "bytes": size,
            "ok": sum(g["calls"] for g in groups if g["status"] == "ok"),
            "failed": sum(g["calls"] for g in groups if g["status"] == "failed"),
            "groups": groups,
        }

    def clear(self, status: str | None = None, model: str | None = None) -> int:
        where, args = _filters(status, model)
        with self._lock:
            deleted = self._db.execute(f"DELETE FROM calls{where}", args).rowcount
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return deleted


def _filters(status: str | None, model: str | None) -> tuple[str, list[str]]:
    clauses, args = [], []
    if status:
        clauses.append("status = ?")
        args.append(status)
    if model:
        clauses.append("model = ?")
        args.append(model)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


@dataclass(frozen=True, slots=True)
class Owner:
    """Who holds a lease: a random token per run, with host and pid so that a dead owner is seen at once."""

    token: str
    host: str
    pid: int
    ttl: float

    @classmethod
    def new(cls, ttl: float) -> Owner:
        return cls(secrets.token_hex(8), socket.gethostname(), os.getpid(), ttl)


def _lease_live(lease: tuple[Any, ...], now: float) -> bool:
    _, host, pid, expires = lease
    if expires <= now:
        return False
    return host != socket.gethostname() or _pid_alive(int(pid))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists, but not ours to signal (or we cannot tell): trust the expiry
    return True


def _entry(row: tuple[Any, ...]) -> CacheEntry:
    """A row as an entry; odd rows (from older versions or other tools) are read, never a crash."""
    (key, backend, model, request, status, text, choices, finish, p_tok, c_tok, cost, error, attempts, made, upd) = row
    completion = None
    if status == "ok" or text is not None:  # failed rows with a text hold a rejected reply (cut off)
        texts = _choices(choices)
        text = redact_secrets(text if isinstance(text, str) else "")
        completion = Completion(text, finish, Usage(_int(p_tok), _int(c_tok)), texts or (text,))
    try:
        body = orjson.loads(request)
    except (orjson.JSONDecodeError, TypeError):
        body = {}
    error = redact_optional(error if error is None or isinstance(error, str) else str(error))
    return CacheEntry(key, backend, model, body, status, completion, cost, error, _int(attempts) or 0, made, upd)


def _choices(raw: Any) -> tuple[str, ...]:
    try:
        values = orjson.loads(raw) if raw else []
    except (orjson.JSONDecodeError, TypeError):
        return ()
    if not isinstance(values, list):
        return ()
    return tuple(redact_secrets(v) if isinstance(v, str) else "" for v in values)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
