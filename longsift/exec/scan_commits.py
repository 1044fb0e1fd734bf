"""`select --executor ray`'s shards committed as they complete (exec/commits.py): a rerun of a killed job rescans
no shard that finished.

A shard's map result (exec/ray_select.py ShardResult: its best k with their keys, lengths and records, its counts,
rejections, dropped reasons and own ids) is its marker's body, as JSON; the driver writes it as the shard's result
arrives (the workers need no view of the run folder). Its fingerprint: the shard's identity, the plan (method and
its options, unit, tokenizer, k, length range, filters), the input format, the read limits and the local files the
plan names (a tokenizer, a model). A second scan of a shard for duplicate ids (exec/shard_ids.py) is committed
under its own marker (`part-NNNNN.ids.json`), keyed by the rows it fetched too.

Only what reads back exactly is committed: keys (ints as text: a `random` key is beyond JSON's 64 bits; floats
as JSON's shortest round-trip form), raw JSON lines as text, records parsed from other containers when their JSON
form reads back equal. A rejected record is kept as the quarantine writes it. A result that would not read back
equal is not committed: its shard is scanned again on a rerun (slower, never different).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from longsift.exec import commits
from longsift.exec.ray_select import ShardResult, shard_plan
from longsift.formats.load import Rejection
from longsift.formats.rows import Limits
from longsift.records import Example
from longsift.select.scoring import Plan


class ScanCommits:
    """The committed shards of one `select` on Ray, in `work` (its run folder)."""

    def __init__(self, work: Path, found: Sequence[str], plan: Plan, format: str | None, limits: Limits) -> None:
        self.work, self.found, self.plan, self.format, self.limits = work, found, plan, format, limits
        work.mkdir(parents=True, exist_ok=True)
        self.identities = [commits.identity(shard) for shard in found]

    def fingerprint(self, index: int, fetch: Sequence[int]) -> str:
        plan = shard_plan(self.plan, fetch)
        method = plan.method
        files = {name: commits.local_files(getattr(method, name, None) if name != "tokenizer" else plan.tokenizer)
                 for name in ("tokenizer", "scorer", "encoder")}  # fmt: skip
        return commits.fingerprint(command="select", shard=self.identities[index], format=self.format,
                                   plan={"method": type(method).__qualname__, **dataclasses.asdict(plan)},
                                   limits=dataclasses.asdict(self.limits), fetch=list(fetch), files=files)  # fmt: skip

    def done(self, chosen: Sequence[int], again: dict[int, list[int]]) -> dict[int, ShardResult]:
        """The shards of `chosen` whose result is committed for this very scan."""
        found = {}
        for index in chosen:
            fetch = again.get(index, [])
            marker = commits.done_marker(self.work, index, self.fingerprint(index, fetch), _name(fetch))
            if marker is not None:
                found[index] = decoded(marker["result"], self.found[index], index)
        return found

    def commit(self, result: ShardResult, fetch: Sequence[int], say: Callable[[str], None] | None = None) -> bool:
        body = encoded(result)
        if body is None:
            if say is not None:
                say(f"select: shard {result.index + 1} is not committed (its result would not read back exactly)")
            return False
        marker = {"fingerprint": self.fingerprint(result.index, fetch), "index": result.index,
                  "shard": result.shard, "read": result.read, "result": body}  # fmt: skip
        commits.commit(self.work, result.index, marker, _name(fetch))
        return True


def _name(fetch: Sequence[int]) -> str:
    return "ids" if fetch else "done"


def encoded(result: ShardResult) -> dict[str, Any] | None:
    """The result as JSON values, or None when it would not read back exactly."""
    try:
        body = {
            "entries": [[_key(key), row, length, _payload(payload)] for key, row, (length, payload) in result.entries],
            "read": result.read, "kept": result.kept, "layout": result.layout, "dropped": dict(result.dropped),
            "exact_counts": result.exact_counts, "ids": result.ids,
            "rejections": [[r.row, r.line, r.reason, _as_written(r.raw)] for r in result.rejections],
            "records": [[row, _as_written(data)] for row, data in result.records.items()],
        }  # fmt: skip
        body = orjson.loads(orjson.dumps(body))
        if decoded(body, result.shard, result.index).entries != [
            (k, r, (n, _bytes(p))) for k, r, (n, p) in result.entries
        ]:
            return None
    except (TypeError, ValueError, orjson.JSONEncodeError):
        return None
    return body


def decoded(body: dict[str, Any], shard: str, index: int) -> ShardResult:
    entries = [(_unkey(key), row, (length, _unpayload(payload))) for key, row, length, payload in body["entries"]]
    rejections = [Rejection(shard, row, line, reason, raw) for row, line, reason, raw in body["rejections"]]
    ids = [(row, line, rid) for row, line, rid in body["ids"]] if body["ids"] is not None else None
    return ShardResult(index, shard, entries, body["read"], body["kept"], rejections, body["layout"],
                       Counter(body["dropped"]), body["exact_counts"], ids,
                       {row: data for row, data in body["records"]})  # fmt: skip


def _key(key: Any) -> Any:
    if type(key) is int:
        return str(key)
    if type(key) is float:
        return key
    raise TypeError(f"a key of type {type(key).__name__}")


def _unkey(key: Any) -> Any:
    return int(key) if isinstance(key, str) else key


def _payload(payload: Any) -> Any:
    if payload is None:
        return None
    if isinstance(payload, Example):
        return {"example": payload.to_dict()}
    return {"json": _bytes(payload).decode()}


def _unpayload(payload: dict[str, Any] | None) -> Any:
    if payload is None:
        return None
    if "example" in payload:
        return Example.from_dict(payload["example"])
    return payload["json"].encode()


def _bytes(payload: Any) -> Any:
    return bytes(payload) if isinstance(payload, bytearray | memoryview) else payload


def _as_written(data: Any) -> Any:
    """A rejected record as the quarantine file holds it (what it writes again from this is the same bytes)."""
    return orjson.loads(orjson.dumps(data, default=str))
