"""Ids across shards: a record's own id is unique in the whole pool, as the local executor checks it on the
shards' concatenation (the first occurrence wins, a later one is quarantined as `duplicate id`).

Each shard reports (row, line, id) of every record it kept that carries its own id (its own duplicates are
already quarantined by its scan); the driver walks the shards in pool order, and an id already seen in an earlier
shard is a duplicate at that shard's row, exactly where the local executor would find it. A shard with such rows
is scanned again for its best k + (its duplicates) (of which at least k remain once they are dropped: the merge
stays exact) and sends back the duplicates' records for the quarantine. Pools without duplicates pay nothing.

Rows and ids of a record read from a shard, in the pool (`rebased`, the one rule for select, convert, score and
refine on Ray): its row is the shard's offset + its row there; a record without its own id is named by its row, so
its id follows the row; a record's own id stays, even one that looks like a row number.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from longsift import formats
from longsift.formats.rows import Limits
from longsift.records import Example

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


def rebased(example: Example, shard_row: int, row: int, own_id: bool) -> Example:
    """A record parsed at its shard row, as parsed at its pool row `row` (`own_id`: it carries its own id, as its
    shard's reader noted: an id that looks like a row number may be either)."""
    rid = example.id if own_id else str(row)
    at = row if example.row == shard_row else example.row
    return Example(rid, example.messages, example.source, at, example.metadata)
