"""Embedding selections on Ray (`select --method kcenter|diverse|dedup-semantic --executor ray`): the embedding
pass is a map over the shards, the choice over every record runs in the driver.

Each shard is scanned as the local executor reads the pool for these methods (every record through the plan's
filters: select/pool.py); its records are then embedded in the actor (the encoder loads once per actor, on the
GPUs it reserves: --ray-gpus-per-worker) together with their score (diverse's --score-field; kcenter: none). A
record's vector is the same bits whatever records share its batch (models/hf.py embed: fixed-shape passes), so
the gathered vectors are the local executor's. The driver joins them in pool order and chooses as local does
(greedy k-center, DEITA's walk, the semantic dedup walk), which needs every vector at once: n x dim float32 in the
driver (all-MiniLM-L6-v2: 384 x 4 bytes = 1.5 KiB a record, 1.5 GB a million), besides the records themselves.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from longsift.exec import ray_select
from longsift.exec.ray_select import Merged, ShardResult, ShardScanner
from longsift.formats.load import Quarantine
from longsift.records import Example
from longsift.select.kcenter import Mapped
from longsift.select.pool import KeepAll
from longsift.select.scoring import Plan


@dataclass
class MapAll(KeepAll):
    """Every record kept, as for the local pool selection; `chooser` (kcenter, diverse, ...) maps each shard."""

    chooser: Any = None


@dataclass
class PoolResult(ShardResult):
    mapped: Mapped | None = None  # the chooser's map of the shard's records, in row order (as `entries`)


class PoolScanner(ShardScanner):
    """A Ray Data actor: a shard's records (ShardScanner's scan) and the chooser's map of them (their vectors)."""

    def __init__(self, plan: Plan, format: str | None, limits: Any, again: dict[int, list[int]]) -> None:
        super().__init__(plan, format, limits, again)
        self.chooser = plan.method.chooser  # type: ignore[attr-defined]
        self.chooser.prepare()  # the encoder: loaded once per actor, before its first shard

    def scan(self, index: int, shard: str) -> ShardResult:
        result = super().scan(index, shard)
        alone = dataclasses.replace(result, index=0)  # the shard as a pool of its own: its records at its rows
        examples, lengths = ray_select.materialize(ray_select.merge([alone], self.plan, shard, Quarantine(keep=0)))
        fields = {f.name: getattr(result, f.name) for f in dataclasses.fields(result)}
        return PoolResult(**fields, mapped=self.chooser.map(examples, lengths))


def select(source: Any, plan: Plan, **common: Any) -> tuple[Merged, str, list[Example], list[int | None]]:
    """ray_select.select's scan with every record kept and mapped per shard, then `plan.method`'s choice over
    every shard's map: the chosen records in pool order, with their lengths."""
    chooser = plan.method
    whole = dataclasses.replace(plan, method=MapAll(chooser.uses_length, chooser=chooser), k=None, keep_payload=True)
    merged, name = ray_select.select(source, whole, scanner=PoolScanner, **common)
    examples, lengths = ray_select.materialize(merged)
    chosen = sorted(chooser.pick(gathered(merged), plan.k))  # type: ignore[attr-defined]
    return merged, name, [examples[i] for i in chosen], [lengths[i] for i in chosen]


def gathered(merged: Merged) -> Mapped:
    """Every shard's map in pool order, less the rows the merge left out (ids an earlier shard holds)."""
    parts = []
    for result in merged.shards:
        assert isinstance(result, PoolResult) and result.mapped is not None
        excluded = {row for row, _, _ in result.duplicates}
        parts.append(result.mapped.take([p for p, (_, row, _) in enumerate(result.entries) if row not in excluded]))
    return Mapped.joined(parts)
