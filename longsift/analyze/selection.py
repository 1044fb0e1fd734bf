"""The selection side: what a selected subset looks like next to its source (the paper's Fig. 1b).

The paper reports mean response length in tokens: Alpaca-52k 51, its longest-1k 257, LIMA-1k 531. A profile gives
the response and instruction length statistics in one unit and the mean of every numeric metadata field (quality
scores such as AlpaGasus ratings, when the records carry them).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from numbers import Real
from typing import Any

from longsift.lengths import Unit, count_array, distribution, record_array, unit_record
from longsift.records import Example


def profile(examples: Iterable[Example], unit: Unit) -> dict[str, Any]:
    examples = list(examples)
    response = record_array(unit, [e.responses for e in examples])  # as `select` counts: per assistant turn
    instruction = count_array(unit, [e.prompt for e in examples])
    return {
        "n": len(examples),
        "unit": unit_record(unit),
        "response": distribution(response),
        "instruction": distribution(instruction),
        "quality": numeric_metadata_means(examples),
    }


def numeric_metadata_means(examples: Iterable[Example]) -> dict[str, dict[str, float | int]]:
    """Mean and count of every numeric (not boolean) metadata value, per key."""
    values: dict[str, list[float]] = defaultdict(list)
    for example in examples:
        for key, value in example.metadata.items():
            if isinstance(value, Real) and not isinstance(value, bool):
                values[key].append(float(value))
    return {key: {"mean": sum(v) / len(v), "n": len(v)} for key, v in sorted(values.items())}


def compare_selections(
    subsets: Mapping[str, Iterable[Example]], source: Iterable[Example] | None, unit: Unit
) -> dict[str, Any]:
    """Each subset's profile, the source's (once), and how each subset's mean response length compares to it."""
    source_profile = profile(source, unit) if source is not None else None
    source_mean = source_profile["response"].get("mean") if source_profile else None
    rows: dict[str, Any] = {}
    for name, examples in subsets.items():
        row = profile(examples, unit)
        subset_mean = row["response"].get("mean")
        row["mean_ratio"] = subset_mean / source_mean if source_mean and subset_mean is not None else None
        row["share"] = row["n"] / source_profile["n"] if source_profile and source_profile["n"] else None
        rows[name] = row
    return {"unit": unit_record(unit), "source": source_profile, "subsets": rows}
