"""`longest`: the k records with the longest responses (all assistant turns), the paper's selection."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from longsift.select.scoring import Item


@dataclass(frozen=True)
class Longest:
    name = "longest"
    needs_example = False
    uses_length = True

    def keys(self, items: Sequence[Item], lengths: Sequence[int | None]) -> list[Any]:
        return list(lengths)

    def describe(self) -> dict[str, Any]:
        return {"method": self.name, "ties": "equal lengths: the earlier source row wins"}
