"""Ids across shards: a record's own id is unique in the whole pool, as the local executor checks it on the
shards' concatenation (the first occurrence wins, a later one is quarantined as `duplicate id`).

Each shard reports (row, line, id) of every record it kept that carries its own id (its own duplicates are
already quarantined by its scan); the driver walks the shards in pool order, and an id already seen in an earlier
shard is a duplicate at that shard's row, exactly where the local executor would find it. A shard with such rows
is scanned again for its best k + (its duplicates) (of which at least k remain once they are dropped: the merge
stays exact) and sends back the duplicates' records for the quarantine. Pools without duplicates pay nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from longsift import formats
from longsift.formats.rows import Limits

OwnIds = list[tuple[int, int | None, str]]  # (row in the shard, line in the shard, id), in row order


def duplicates(ids_by_shard: Sequence[OwnIds | None]) -> dict[int, OwnIds]:
    """Shard index -> its rows whose id an earlier shard already holds, in row order."""
    seen: set[str] = set()
    found: dict[int, OwnIds] = {}
    for index, ids in enumerate(ids_by_shard):
        for row, line, rid in ids or ():
            if rid in seen:
                found.setdefault(index, []).append((row, line, rid))
            else:
                seen.add(rid)
    return found


def records_at(path: str, rows: set[int], format: str | None, limits: Limits) -> dict[int, Any]:
    """The records at `rows` of a local shard file, as read (the quarantine keeps each rejected record)."""
    if not rows:
        return {}
    container = formats.container_of(path, format)
    found = {}
    for raw in formats.iter_raw_rows(path, container, limits=limits):
        if raw.row in rows:
            found[raw.row] = raw.data
            if len(found) == len(rows):
                break
    return found
