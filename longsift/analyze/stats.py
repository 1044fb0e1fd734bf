"""Small statistics on numpy alone: seeded percentile bootstrap of a mean, Cohen's kappa."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def bootstrap_mean_ci(
    values: Sequence[float] | np.ndarray, *, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of the mean: resample with replacement `n_resamples` times.

    Seeded, so the same values and seed give the same interval. Empty input has no interval.
    """
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return None, None
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(n_resamples, data.size))].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


def cohen_kappa(first: Sequence[str], second: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Agreement of two raters over the same items: observed share, chance share, kappa and the confusion matrix.

    kappa = (p_o - p_e) / (1 - p_e), p_e = sum over labels of the product of both raters' label shares.
    When chance agreement is 1 (both raters always gave the same single label) kappa is undefined (None).
    """
    if len(first) != len(second):
        raise ValueError("both raters must rate the same items")
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for a, b in zip(first, second, strict=True):
        matrix[index[a], index[b]] += 1
    n = int(matrix.sum())
    if n == 0:
        return {"n": 0, "agreement": None, "chance": None, "kappa": None, "confusion": matrix.tolist()}
    observed = float(np.trace(matrix)) / n
    chance = float((matrix.sum(axis=1) / n) @ (matrix.sum(axis=0) / n))
    kappa = None if np.isclose(chance, 1.0) else (observed - chance) / (1.0 - chance)
    return {"n": n, "agreement": observed, "chance": chance, "kappa": kappa, "confusion": matrix.tolist()}
