"""AlpacaEval 2.0 interop: export `model_outputs.json`, score annotation files, read leaderboards, drive alpaca_eval.

Scoring follows alpaca_eval's `metrics/winrate.py` and `metrics/helpers.py` exactly:
- `preference` is 1 + P(output_2 preferred) in [1, 2]; 0 and 1.5 are draws (0 is the legacy encoding);
  a missing preference (None/NaN) or one outside [1, 2] is a failed annotation and leaves n_total.
- win rate = 100 * mean(preference - 1); standard error = 100 * its standard error of the mean (ddof=1);
- discrete win rate rounds each preference to 1 or 2 (half to even, draws kept as 1.5) before the mean;
- n_wins / n_wins_base count preferences above / below 1.5.
- avg_length is alpaca_eval's `int(model_outputs["output"].str.len().mean())` (main.py): characters, truncated, over
  every row of the model's outputs file, whether or not its annotation succeeded or survived the merge with the
  reference (AlpacaEval 1.0's gpt4_1106_preview row: n_total 804, avg_length over its 805 outputs). Rows whose
  output is not a string (null) are left out of the mean, as pandas skips NaN. Without the outputs file it is
  taken from the annotations' output_2, one row each, which is the same number when every output was annotated.
The length-controlled win rate is in `longsift.judge.length_control`; it needs AlpacaEval's instruction
difficulties (`df_gamed.csv`), which come from a path the user gives or the Hugging Face hub when reachable.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from longsift.errors import DataError, LongsiftError, MissingDependencyError
from longsift.formats.rows import first_char, iter_json_array, iter_jsonl
from longsift.generations import write_alpacaeval
from longsift.judge import length_control
from longsift.outputs import write_bytes
from longsift.records import Generation

EVAL_SET = "alpacaeval"
HUB_REPO = "tatsu-lab/alpaca_eval"
HUB_FILE = "df_gamed.csv"
HUB_PROBE_TIMEOUT_S = 5.0
DEFAULT_ANNOTATOR = "weighted_alpaca_eval_gpt4_turbo"


def read_rows(path: str | Path) -> Iterator[dict[str, Any]]:
    """Dicts of a JSON array or JSON-lines file (optionally .gz); a bad row is an error naming its line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(str(path), "file not found")
    rows = iter_json_array(path) if first_char(path) == "[" else iter_jsonl(path)
    for raw in rows:
        if raw.data is None:
            raise DataError(str(path), raw.error or "unreadable row", line=raw.line, row=raw.row)
        yield raw.data


def export_model_outputs(generations: Iterable[Generation], path: str | Path, generator: str | None = None) -> int:
    """Write the AlpacaEval generations among `generations` as alpaca_eval's `model_outputs.json`.

    Each entry holds `instruction`, `output`, `generator` (the model name unless `generator` is given) and
    `dataset` (from the record's metadata, when present). Returns the number written.
    """
    chosen = [g for g in generations if g.eval_set == EVAL_SET]
    if not chosen:
        raise LongsiftError(f"no generations with eval_set {EVAL_SET!r} to export")
    names = {generator or g.model for g in chosen}
    if len(names) > 1:
        raise LongsiftError(f"generations come from several models ({', '.join(sorted(names))}): pass --model-name")
    return write_alpacaeval(chosen, path, generator)


@dataclass(frozen=True, slots=True)
class AlpacaEvalScore:
    """Metrics in the leaderboard's units (percent) and names."""

    model: str
    baseline: str
    annotator: str
    win_rate: float
    standard_error: float | None
    discrete_win_rate: float
    n_wins: int
    n_wins_base: int
    n_draws: int
    n_total: int
    avg_length: int
    length_controlled_winrate: float | None
    length_controlled_note: str
    length_controlled_weights: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def head_to_head(preferences: Iterable[float | None]) -> dict[str, Any]:
    """win_rate, standard_error, n_wins, n_wins_base, n_draws, n_total and discrete_win_rate from preferences."""
    raw = np.array([np.nan if p is None else p for p in preferences], dtype=float)
    continuous = _describe(np.where(raw == 0, 1.5, raw))
    discrete = np.round(np.where(raw == 1.5, 0.0, raw))  # round half to even, as pandas
    continuous["discrete_win_rate"] = _describe(np.where(discrete == 0, 1.5, discrete))["win_rate"]
    return continuous


def _describe(preferences: np.ndarray) -> dict[str, Any]:
    n_draws = int(np.sum(preferences == 1.5))
    valid = preferences[(preferences >= 1) & (preferences <= 2)] - 1
    n = len(valid)
    return {
        "win_rate": float(valid.mean() * 100) if n else math.nan,
        "standard_error": float(valid.std(ddof=1) / math.sqrt(n) * 100) if n > 1 else None,
        "n_wins": int(np.sum(valid > 0.5)),
        "n_wins_base": int(np.sum(valid < 0.5)),
        "n_draws": n_draws,
        "n_total": n,
    }


def score_annotations(
    path: str | Path, difficulty: str | Path | None = None, *, hub: bool = True,
    model_outputs: str | Path | None = None,
) -> AlpacaEvalScore:  # fmt: skip
    """Score an alpaca_eval annotations file (`annotations.json[.gz]`, output_1 = reference, output_2 = model).

    `model_outputs` (the `model_outputs.json` that was annotated) gives avg_length as the leaderboard computes it.

    The length-controlled win rate needs the instruction-difficulty table: `difficulty` (a path to
    `df_gamed.csv`), else the Hugging Face hub when `hub` and it is reachable; otherwise it is None and
    `length_controlled_note` says why.
    """
    rows = list(read_rows(path))
    if not rows:
        raise DataError(str(path), "no annotations")
    for key in ("output_1", "output_2", "preference"):
        if key not in rows[0]:
            raise DataError(str(path), f"not an alpaca_eval annotations file: no {key!r} field", row=0)
    model, baseline = _single(rows, "generator_2", path), _single(rows, "generator_1", path)
    preferences = [_preference(row.get("preference")) for row in rows]
    metrics = head_to_head(preferences)
    outputs = [row.get("output") for row in read_rows(model_outputs)] if model_outputs else None
    lc, note, weights = _length_controlled(rows, preferences, model, baseline, difficulty, hub)
    return AlpacaEvalScore(
        model=model, baseline=baseline, annotator=_single(rows, "annotator", path), **metrics,
        avg_length=leaderboard_avg_length(outputs if outputs is not None else [r.get("output_2") for r in rows]),
        length_controlled_winrate=lc,
        length_controlled_note=note, length_controlled_weights=weights,
    )  # fmt: skip


def leaderboard_avg_length(outputs: Iterable[Any]) -> int:
    """alpaca_eval's `int(outputs.str.len().mean())`: mean characters of the string outputs, truncated; 0 if none."""
    lengths = [len(text) for text in outputs if isinstance(text, str)]
    return int(sum(lengths) / len(lengths)) if lengths else 0


def _single(rows: list[dict[str, Any]], key: str, path: str | Path) -> str:
    values = {str(row.get(key, "")) for row in rows}
    if len(values) > 1:
        raise DataError(str(path), f"annotations mix several {key} values ({', '.join(sorted(values))})")
    return values.pop()


def _preference(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _length_controlled(
    rows: list[dict[str, Any]],
    preferences: list[float | None],
    model: str,
    baseline: str,
    difficulty: str | Path | None,
    hub: bool,
) -> tuple[float | None, str, dict[str, float] | None]:
    if model == baseline:  # alpaca_eval: the reference against itself is 50 by construction
        return 50.0, "model is the reference: 50 by construction", dict.fromkeys(length_control.FEATURES, 0.0)
    if difficulty is not None:
        table_path: str | Path = difficulty
    else:
        found, reason = hub_difficulty_table() if hub else (None, "hub lookup disabled (--no-hub)")
        if found is None:
            return None, f"length-controlled win rate needs AlpacaEval's instruction difficulties ({HUB_FILE}): "\
                f"{reason}; pass --difficulty PATH/TO/{HUB_FILE}", None  # fmt: skip
        table_path = found
    table = length_control.read_difficulty_table(table_path)
    fit = length_control.fit_length_controlled(
        [row.get("output_1") for row in rows], [row.get("output_2") for row in rows], preferences, table
    )
    note = f"GLM length_controlled_v1 fitted with C={fit.C:g} on {table.source}"
    if len(rows) != len(table.difficulty):
        note += f"; {len(rows)} annotations for {len(table.difficulty)} difficulties, matched by row position"
    if not fit.regularized:
        note += " (no gamed-baseline rows in the table, so no regularisation to the baseline: not the official LC)"
    return fit.winrate, note, fit.weights


def hub_difficulty_table() -> tuple[str | None, str]:
    """The cached or downloadable `df_gamed.csv`, or (None, why not); fails fast offline, never hangs."""
    try:
        import huggingface_hub
        from huggingface_hub import constants
    except ImportError:
        return None, "huggingface_hub is not installed"
    cached = huggingface_hub.try_to_load_from_cache(HUB_REPO, HUB_FILE, repo_type="dataset")
    if isinstance(cached, str):
        return cached, "cached"
    if constants.HF_HUB_OFFLINE:
        return None, "not in the Hugging Face cache and HF_HUB_OFFLINE is set"
    import httpx

    url = f"{constants.ENDPOINT}/datasets/{HUB_REPO}/resolve/main/{HUB_FILE}"
    try:  # one quick probe: huggingface_hub itself retries for ~25 s when the hub is unreachable
        httpx.head(url, timeout=HUB_PROBE_TIMEOUT_S, follow_redirects=False)
    except httpx.HTTPError as exc:
        return None, f"the Hugging Face hub is unreachable ({type(exc).__name__})"
    try:
        return huggingface_hub.hf_hub_download(HUB_REPO, HUB_FILE, repo_type="dataset", etag_timeout=5), "hub"
    except Exception as exc:  # any hub failure only means "unavailable"
        return None, f"download from the hub failed ({type(exc).__name__}: {str(exc)[:200]})"


@dataclass(frozen=True, slots=True)
class LeaderboardRow:
    name: str
    win_rate: float | None
    length_controlled_winrate: float | None
    avg_length: int | None
    standard_error: float | None = None
    n_total: int | None = None
    mode: str = ""


def read_leaderboard(path: str | Path) -> list[LeaderboardRow]:
    """Rows of an alpaca_eval leaderboard CSV (the raw `src` layout or the `docs` one with a `name` column)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(str(path), "leaderboard CSV not found")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "win_rate" not in reader.fieldnames:
            raise DataError(str(path), "not an alpaca_eval leaderboard: no 'win_rate' column")
        name_key = "name" if "name" in reader.fieldnames else reader.fieldnames[0]
        return [
            LeaderboardRow(
                name=row[name_key],
                win_rate=_number(row.get("win_rate")),
                length_controlled_winrate=_number(row.get("length_controlled_winrate")),
                avg_length=_integer(row.get("avg_length")),
                standard_error=_number(row.get("standard_error")),
                n_total=_integer(row.get("n_total")),
                mode=row.get("mode") or row.get("filter") or "",
            )
            for row in reader
        ]


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


def _integer(text: str | None) -> int | None:
    value = _number(text)
    return None if value is None or math.isnan(value) else int(value)


def run_alpaca_eval(
    model_outputs: str | Path,
    output_dir: str | Path,
    annotators_config: str = DEFAULT_ANNOTATOR,
    reference_outputs: str | Path | None = None,
    max_instances: int | None = None,
    difficulty: str | Path | None = None,
) -> AlpacaEvalScore:
    """Annotate `model_outputs.json` with the alpaca_eval package, save its annotations, and score them here."""
    evaluate = _import_alpaca_eval()
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {"annotators_config": annotators_config, "output_path": str(output_dir)}
    if reference_outputs is not None:
        options["reference_outputs"] = str(reference_outputs)
    if max_instances is not None:
        options["max_instances"] = max_instances
    _, annotations = evaluate(model_outputs=str(model_outputs), is_return_instead_of_print=True, **options)
    records = annotations.to_dict(orient="records") if hasattr(annotations, "to_dict") else list(annotations)
    path = output_dir / "annotations.json"
    write_bytes(path, orjson.dumps(records, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY, default=str))
    # with max_instances alpaca_eval averages over the shuffled subset it annotated: the annotations hold it
    return score_annotations(path, difficulty, model_outputs=model_outputs if max_instances is None else None)


def _import_alpaca_eval() -> Any:
    try:
        from alpaca_eval import evaluate
    except ModuleNotFoundError as exc:
        if exc.name == "pkg_resources":
            raise LongsiftError(
                "alpaca_eval is installed but cannot import pkg_resources: alpaca-eval 0.6.6 needs setuptools<81 "
                "(pip install 'setuptools<81')"
            ) from None
        missing = MissingDependencyError("alpaca-eval", "alpacaeval", "`longsift alpacaeval run`")
        missing.msg = f"{missing}; alpaca-eval 0.6.6 imports only with setuptools<81 (pip install 'setuptools<81')"
        missing.args = (missing.msg,)
        raise missing from None
    return evaluate
