"""AlpacaEval 2.0 length-controlled win rate: the GLM of Dubois et al. (2024), without scikit-learn.

alpaca_eval (`metrics/glm_winrate.py`, GLM `length_controlled_v1`) fits, per evaluated model, a logistic
regression of the judge's soft preference p_i = preference_i - 1 on three features and no intercept:

    np.tanh(std_delta_len)             std_delta_len = (len(output_1) - len(output_2)) / std(...)  (ddof=1, chars)
    instruction_difficulty             a fixed per-instruction value from AlpacaEval's `df_gamed.csv`
    not_gamed_baseline.astype(float)   1 for the model's rows: its "quality" term

The rows of the two length-gamed GPT-4 baselines in `df_gamed.csv` (features 0 for the quality term) join the
fit with sample weight 0.2 / 2, which regularises the length and difficulty slopes towards the baseline's.
Soft labels enter as weighted cross-entropy. The fit is L1-penalised (liblinear: |w|_1 + C * loss), with C
chosen from logspace(-4, 4, 10) by 5-fold group cross-validation on the weighted log loss, then refitted on
everything. The LC win rate is 100 * mean_i sigmoid(w . x_i) with the length feature set to 0.

liblinear is replaced by an exact proximal-Newton solver (the problem is convex with three unknowns); folds
follow sklearn's GroupKFold for equal-size groups. Both only affect which C wins the cross-validation, where
the candidate fits differ in the last digits.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from longsift.errors import DataError

FEATURES = ("np.tanh(std_delta_len)", "instruction_difficulty", "not_gamed_baseline.astype(float)")
CS = np.logspace(-4, 4, 10)  # LogisticRegressionCV(Cs=10)
N_SPLITS = 5
GAMED_WEIGHT = 0.2 / 2  # regularize_to_baseline_lambda / number of gamed baselines


@dataclass(frozen=True, slots=True)
class DifficultyTable:
    """Instruction difficulty by AlpacaEval index, plus the gamed baselines' rows when the table has them."""

    difficulty: dict[int, float]
    gamed_features: np.ndarray  # (m, 3) design rows of the gamed baselines (quality feature 0)
    gamed_preferences: np.ndarray  # (m,) soft labels in [0, 1]
    source: str

    @property
    def has_gamed_rows(self) -> bool:
        return len(self.gamed_preferences) > 0


@dataclass(frozen=True, slots=True)
class LengthControlledFit:
    winrate: float  # percent
    weights: dict[str, float]
    C: float
    regularized: bool  # True when the gamed baselines' rows were in the fit (the official recipe)


def read_difficulty_table(path: str | Path) -> DifficultyTable:
    """Read `df_gamed.csv` (columns index, instruction_difficulty, preference, std_delta_len,
    not_gamed_baseline, ...) or `instruction_difficulty.csv` (AlpacaEval index, instruction_difficulty)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(str(path), "instruction-difficulty table not found (AlpacaEval's df_gamed.csv)")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "instruction_difficulty" not in rows[0]:
        raise DataError(str(path), "expected a CSV with an 'instruction_difficulty' column (AlpacaEval df_gamed.csv)")
    index_key = "index" if "index" in rows[0] else next(iter(rows[0]))
    difficulty: dict[int, float] = {}
    gamed_x, gamed_y = [], []
    has_gamed = {"preference", "std_delta_len", "not_gamed_baseline"} <= rows[0].keys()
    for line, row in enumerate(rows, 2):
        try:
            index, value = int(float(row[index_key])), float(row["instruction_difficulty"])
            difficulty.setdefault(index, value)  # first occurrence, as alpaca_eval's drop_duplicates("index")
            if has_gamed:
                x = (np.tanh(float(row["std_delta_len"])), value, float(_is_true(row["not_gamed_baseline"])))
                gamed_x.append(x)
                gamed_y.append(float(row["preference"]) if row["preference"] not in ("", "nan") else np.nan)
        except (TypeError, ValueError) as exc:
            raise DataError(str(path), f"unreadable difficulty row: {exc}", line=line) from None
    x_arr = np.asarray(gamed_x, dtype=float).reshape(-1, 3)
    y_arr = np.asarray(gamed_y, dtype=float)
    if np.nanmax(y_arr, initial=0.0) > 1:  # stored in alpaca_eval's [1, 2] encoding rather than as P in [0, 1]
        y_arr = preference_probabilities(list(y_arr))
    keep = ~np.isnan(y_arr) & ~np.isnan(x_arr).any(axis=1)
    return DifficultyTable(difficulty, x_arr[keep], y_arr[keep], str(path))


def _is_true(text: str) -> bool:
    return text.strip().lower() in ("true", "1", "1.0")


def fit_length_controlled(
    output_1: Sequence[str | None],
    output_2: Sequence[str | None],
    preferences: Sequence[float | None],
    table: DifficultyTable,
    indices: Sequence[int] | None = None,
) -> LengthControlledFit:
    """Fit the GLM on one model's annotations (output_1 = baseline, output_2 = model) and return its LC win rate.

    `indices` are the AlpacaEval instruction indices of the rows; alpaca_eval uses the row position.
    """
    n = len(preferences)
    indices = list(range(n)) if indices is None else list(indices)
    missing = [i for i in indices if i not in table.difficulty]
    if missing:
        raise DataError(
            table.source, f"no instruction difficulty for AlpacaEval index {missing[0]} ({len(missing)} missing)"
        )
    std_delta_len = standardized_length_difference(output_1, output_2)
    difficulty = np.array([table.difficulty[i] for i in indices], dtype=float)
    x_model = np.column_stack([np.tanh(std_delta_len), difficulty, np.ones(n)])
    y_model = preference_probabilities(preferences)

    x_parts, y_parts, w_parts = [x_model], [y_model], [np.ones(n)]
    if table.has_gamed_rows:
        x_parts.append(table.gamed_features)
        y_parts.append(table.gamed_preferences)
        w_parts.append(np.full(len(table.gamed_preferences), GAMED_WEIGHT))
    x, y, sample_weight = np.vstack(x_parts), np.concatenate(y_parts), np.concatenate(w_parts)
    train = ~np.isnan(y) & ~np.isnan(x).any(axis=1)
    x, y, sample_weight = x[train], y[train], sample_weight[train]

    best_c = select_c(x, y, sample_weight)
    weights = fit_l1_logistic(x, y, sample_weight, best_c)
    x_test = x_model.copy()
    x_test[:, 0] = 0.0  # "what if both answers had the same length"
    winrate = float(np.mean(sigmoid(x_test @ weights)) * 100)
    return LengthControlledFit(
        winrate, dict(zip(FEATURES, map(float, weights), strict=True)), best_c, table.has_gamed_rows
    )


def standardized_length_difference(output_1: Sequence[str | None], output_2: Sequence[str | None]) -> np.ndarray:
    """(len(output_1) - len(output_2)) / its sample standard deviation (ddof=1, as pandas), in characters."""
    delta = np.array([_length(a) - _length(b) for a, b in zip(output_1, output_2, strict=True)], dtype=float)
    std = np.nanstd(delta, ddof=1) if np.count_nonzero(~np.isnan(delta)) > 1 else 0.0
    return delta / std if std > 0 else np.zeros(len(delta))


def _length(text: str | None) -> float:
    return float(len(text)) if isinstance(text, str) else np.nan


def preference_probabilities(preferences: Sequence[float | None]) -> np.ndarray:
    """alpaca_eval's preference in [1, 2] (0 = legacy draw, None = failed) as P(model preferred) in [0, 1]."""
    p = np.array([np.nan if v is None else v for v in preferences], dtype=float)
    p[p == 0] = 1.5
    return p - 1


def sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0, -z))


def weighted_loss(x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray, w: np.ndarray) -> float:
    """Soft-label cross-entropy, summed with sample weights (what liblinear's C multiplies)."""
    z = x @ w
    return float(np.sum(sample_weight * (np.logaddexp(0, z) - y * z)))


def fit_l1_logistic(
    x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray, C: float, max_iter: int = 200, tol: float = 1e-12
) -> np.ndarray:
    """argmin_w |w|_1 / C + weighted_loss(w), by proximal Newton steps with a backtracking line search."""
    lam = 1.0 / C
    w = np.zeros(x.shape[1])

    def objective(v: np.ndarray) -> float:
        return weighted_loss(x, y, sample_weight, v) + lam * float(np.abs(v).sum())

    current = objective(w)
    for _ in range(max_iter):
        p = sigmoid(x @ w)
        grad = x.T @ (sample_weight * (p - y))
        hess = x.T @ (x * (sample_weight * p * (1 - p))[:, None]) + 1e-12 * np.eye(x.shape[1])
        step = _lasso_newton_step(w, grad, hess, lam)
        decrease = grad @ step + lam * (np.abs(w + step).sum() - np.abs(w).sum())
        t = 1.0
        while t > 1e-10:
            candidate = objective(w + t * step)
            if candidate <= current + 1e-4 * t * decrease:
                break
            t /= 2
        else:
            break  # no further decrease possible in floating point
        w, current = w + t * step, candidate
        if np.max(np.abs(t * step)) < tol * max(1.0, np.max(np.abs(w))):
            break
    return w


def _lasso_newton_step(w: np.ndarray, grad: np.ndarray, hess: np.ndarray, lam: float) -> np.ndarray:
    """Minimise grad.d + d'Hd/2 + lam |w + d|_1 over d by cyclic coordinate descent (a few unknowns)."""
    d = np.zeros_like(w)
    for _ in range(500):
        largest = 0.0
        for j in range(len(w)):
            a = hess[j, j]
            b = grad[j] + hess[j] @ d - a * d[j]
            target = w[j] - b / a
            u = np.sign(target) * max(abs(target) - lam / a, 0.0)
            largest = max(largest, abs(u - w[j] - d[j]))
            d[j] = u - w[j]
        if largest < 1e-15 * max(1.0, np.max(np.abs(w + d))):
            break
    return d


def group_folds(n_groups: int, n_splits: int = N_SPLITS) -> np.ndarray:
    """sklearn GroupKFold for equal-size groups: groups handed out round robin, last group first."""
    folds = np.empty(n_groups, dtype=int)
    folds[np.arange(n_groups)[::-1]] = np.arange(n_groups) % n_splits
    return folds


def cv_log_loss(y: np.ndarray, predicted: np.ndarray, sample_weight: np.ndarray) -> float:
    """alpaca_eval's `logloss_continuous`: the weighted soft-label log loss, averaged over rows (not weights)."""
    predicted = np.clip(predicted, 1e-15, 1 - 1e-15)
    return float(-np.mean(sample_weight * (y * np.log(predicted) + (1 - y) * np.log(1 - predicted))))


def select_c(x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray, cs: np.ndarray = CS) -> float:
    """The C with the lowest log loss summed over the folds (first one on ties, like LogisticRegressionCV)."""
    folds = group_folds(len(y), N_SPLITS)
    totals = np.zeros(len(cs))
    for fold in range(N_SPLITS):
        test = folds == fold
        for k, c in enumerate(cs):
            w = fit_l1_logistic(x[~test], y[~test], sample_weight[~test], c)
            totals[k] += cv_log_loss(y[test], sigmoid(x[test] @ w), sample_weight[test])
    return float(cs[int(np.argmin(totals))])
