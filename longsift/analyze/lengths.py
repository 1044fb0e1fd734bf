"""Length distributions of model responses, counted in a unit of the one registry (`longsift.lengths`).

Units, their counts, their descriptions and the summary statistics (`distribution`) all come from the
registry, as `select` and `stats` use them; this module only groups the lengths of generations.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import numpy as np

from longsift.lengths import Unit, distribution, record_array
from longsift.records import Generation


def histogram(lengths_by_group: dict[str, np.ndarray], bins: int = 20) -> dict[str, Any]:
    """Counts per group on shared edges from 0 to the largest length, so groups can be drawn together."""
    top = max((int(v.max()) for v in lengths_by_group.values() if v.size), default=0)
    edges = np.linspace(0, max(top, 1), bins + 1)
    counts = {name: np.histogram(v, bins=edges)[0].tolist() for name, v in lengths_by_group.items()}
    return {"edges": edges.tolist(), "counts": counts}


def response_lengths(generations: Iterable[Generation], unit: Unit) -> dict[tuple[str, str, str], int]:
    """(model, eval_set, prompt_id) -> response length (the sum over its turns), counted in one batched pass."""
    generations = list(generations)
    counts = record_array(unit, [g.outputs for g in generations])
    return {(g.model, g.eval_set, g.prompt_id): int(c) for g, c in zip(generations, counts, strict=True)}


def length_distributions(lengths: dict[tuple[str, str, str], int], bins: int = 20) -> dict[str, Any]:
    """Per model: overall and per-eval-set statistics, plus a shared-edge histogram."""
    by_model: dict[str, list[int]] = defaultdict(list)
    by_set: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for (model, eval_set, _), length in lengths.items():
        by_model[model].append(length)
        by_set[model][eval_set].append(length)
    arrays = {model: np.asarray(values) for model, values in sorted(by_model.items())}
    models = {
        model: {"all": distribution(values),
                "by_eval_set": {s: distribution(v) for s, v in sorted(by_set[model].items())}}
        for model, values in arrays.items()
    }  # fmt: skip
    return {"models": models, "histogram": histogram(arrays, bins)}
