"""The run-directory layout: where each stage writes what, so the runner, analyze and report agree.

A run directory holds one folder per stage; every stage is optional and the report renders whatever is there.

    RUN_DIR/
      select/<name>.json               a selected subset (any format `longsift.formats.load` reads, usually FastChat)
      select/<name>.manifest.json      how the subset was made (`longsift.manifest`): options, the source corpus
                                       (input role "source") by hash, the selection summary
      select/summary.json              selection statistics (a JSON object; shown as is)
      train/<model>/loss.json          [{"step": int, "epoch": float, "loss": float}, ...]
      train/<model>/loss.png           the same curve as drawn by the train stage (the report redraws it)
      train/<model>/train_config.json  the resolved training config (the manifest's options when it is absent)
      generate/<model>.jsonl           one `Generation.to_dict()` per line
      judge/<A>__vs__<B>/judgments.jsonl  one `Judgment.to_dict()` per line, both orders of every prompt
      judge/<A>__vs__<B>/summary.json  {"paper"|"strict": {<eval set>|"all": verdicts.tally row}} (A's perspective)
      alpacaeval/<model>.json          win_rate, standard_error, discrete_win_rate, n_total, avg_length (percent
                                       units, as the leaderboard CSV), length_controlled_winrate (null: no LC)
      mtbench/<model>.json             {"model", "judge", "overall", "turn_1", "turn_2",
                                        "categories": {<category>: {"score", "turn_1", "turn_2"}}, "n_judged",
                                        "n_failed", ...}: built by `mtbench_scores`, read by `read_mtbench`
      analyze/analysis.json            what `longsift analyze RUN_DIR` computed (see longsift.analyze.run)

`<model>`, `<A>`, `<B>` are file-name slugs (`slug`); the real model names live inside the records.
Commands write a manifest of the one schema of `longsift.manifest` beside each file they write (`x.manifest.json`) or
inside each folder (`manifest.json`); the runner keeps its own per stage in RUN_DIR/.stages/<stage>/manifest.json.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import orjson

from longsift import generations
from longsift.errors import ConfigError, DataError
from longsift.manifest import Manifest, read_manifest
from longsift.outputs import write_bytes
from longsift.records import Generation, Judgment

SELECT, TRAIN, GENERATE, JUDGE, ALPACAEVAL, MTBENCH, ANALYZE = (
    "select", "train", "generate", "judge", "alpacaeval", "mtbench", "analyze",
)  # fmt: skip
STAGES = (SELECT, TRAIN, GENERATE, JUDGE, ALPACAEVAL, MTBENCH, ANALYZE)

MANIFEST = "manifest.json"
SUMMARY = "summary.json"
JUDGMENTS = "judgments.jsonl"
LOSS_JSON = "loss.json"
LOSS_PNG = "loss.png"
TRAIN_CONFIG = "train_config.json"
ANALYSIS = "analysis.json"
PAIR_SEPARATOR = "__vs__"
DATA_ENV = "LONGSIFT_DATA"
DATA_MARKER = "README.md"  # the shared data folder's own README (shared/data/README.md)


def checkout_data_dir() -> Path:
    """The checkout's `../shared/data`, relative to the package (not to the current directory)."""
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


def data_dir(given: str | Path | None = None, *, required: bool = True) -> Path:
    """The data folder: `given`, else $LONGSIFT_DATA, else the checkout's ../shared/data; the same from any
    working directory. `required`: a clear error when none of them is a folder (else the checkout's path)."""
    if given is not None:
        return Path(given)
    if explicit := os.environ.get(DATA_ENV):
        return Path(explicit)
    found = checkout_data_dir()
    if required and not found.is_dir():
        raise ConfigError(f"no data folder: set {DATA_ENV} to the folder holding alpaca_subsets/, test/, "
                          f"alpaca_eval/ and mt_bench/ (or pass --data-dir); looked in {found}")  # fmt: skip
    return found


def slug(name: str) -> str:
    """A file-name-safe form of a model name: `meta-llama/Llama-2-7b` -> `meta-llama--Llama-2-7b`."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", name.replace("/", "--")).strip("_") or "_"


def select_dir(run_dir: Path) -> Path:
    return Path(run_dir) / SELECT


SELECTION_SUFFIXES = (".json", ".jsonl", ".parquet")  # what `longsift.formats.load` reads, gzipped or not
SIDE_FILE_SUFFIXES = (".manifest.json", ".quarantine.jsonl", ".failures.jsonl")  # outputs.side_path names


def selected_files(run_dir: Path) -> list[Path]:
    """The selected subsets in select/: data files, not the folder's manifest and summary, not side files
    (`x.manifest.json`, `x.quarantine.jsonl`, `x.failures.jsonl`), hidden or temporary files, caches."""
    folder = select_dir(run_dir)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and is_selection_name(p.name))


def is_selection_name(name: str) -> bool:
    data = name.removesuffix(".gz")
    return (
        name not in (MANIFEST, SUMMARY)
        and not name.startswith(".")
        and data.endswith(SELECTION_SUFFIXES)
        and not data.endswith(SIDE_FILE_SUFFIXES)
    )


def selection_manifest(path: Path) -> Manifest | None:
    """The manifest `longsift select` (or a select stage) wrote beside a selected subset; None when there is none
    of the current schema."""
    record = read_manifest(path)
    return record if record is not None and record.command == "select" else None


def train_dirs(run_dir: Path) -> list[Path]:
    folder = Path(run_dir) / TRAIN
    return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def generation_file(run_dir: Path, model: str) -> Path:
    return Path(run_dir) / GENERATE / f"{slug(model)}.jsonl"


def generation_files(run_dir: Path) -> list[Path]:
    return sorted((Path(run_dir) / GENERATE).glob("*.jsonl"))


def judge_dir(run_dir: Path, model_a: str, model_b: str) -> Path:
    return Path(run_dir) / JUDGE / f"{slug(model_a)}{PAIR_SEPARATOR}{slug(model_b)}"


def judge_dirs(run_dir: Path) -> list[Path]:
    folder = Path(run_dir) / JUDGE
    return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def alpacaeval_files(run_dir: Path) -> list[Path]:
    return sorted((Path(run_dir) / ALPACAEVAL).glob("*.json"))


def mtbench_files(run_dir: Path) -> list[Path]:
    return sorted(p for p in (Path(run_dir) / MTBENCH).glob("*.json") if p.name != MANIFEST)


MTBENCH_TURNS = (1, 2)


def mtbench_turn_key(turn: int) -> str:
    return f"turn_{turn}"


def mtbench_scores(
    overall: float | None, turns: Mapping[int, float], categories: Mapping[str, float],
    category_turns: Mapping[str, Mapping[int, float]], n_judged: int, n_failed: int,
) -> dict[str, Any]:  # fmt: skip
    """The scores of `mtbench/<model>.json`: what the MT-Bench judge writes and the report reads (None: no score)."""

    def per_turn(scores: Mapping[int, float]) -> dict[str, float | None]:
        return {mtbench_turn_key(t): scores.get(t) for t in sorted({*MTBENCH_TURNS, *scores})}

    return {
        "overall": overall, **per_turn(turns),
        "categories": {c: {"score": score, **per_turn(category_turns.get(c, {}))} for c, score in categories.items()},
        "n_judged": n_judged, "n_failed": n_failed,
    }  # fmt: skip


def read_mtbench(path: Path) -> dict[str, Any]:
    """An `mtbench/<model>.json` in the schema of `mtbench_scores`; files of the earlier layout (`turn_scores`
    {"1": x}, categories as plain numbers) are read into it. A file that is neither is a DataError."""
    result = read_json(path)
    if not isinstance(result, dict) or not ("overall" in result or "categories" in result):
        raise DataError(str(path), "not an MT-Bench result: neither overall nor categories")
    legacy = result.pop("turn_scores", None)
    if isinstance(legacy, dict):
        for turn, score in legacy.items():
            result.setdefault(mtbench_turn_key(int(turn)), score)
    categories = result.get("categories") or {}
    result["categories"] = {c: v if isinstance(v, dict) else {"score": v} for c, v in categories.items()}
    return result


def analysis_file(run_dir: Path) -> Path:
    return Path(run_dir) / ANALYZE / ANALYSIS


def is_run_dir(path: Path) -> bool:
    """A folder with at least one stage folder in it."""
    return Path(path).is_dir() and any((Path(path) / stage).is_dir() for stage in STAGES)


def read_json(path: Path) -> Any:
    try:
        return orjson.loads(Path(path).read_bytes())
    except orjson.JSONDecodeError as exc:
        raise DataError(str(path), f"invalid JSON ({exc})") from None


Record = TypeVar("Record", Generation, Judgment)


def _read_records(path: Path, record_type: type[Record]) -> Iterator[Record]:
    with Path(path).open("rb") as handle:
        for line_number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                yield record_type.from_dict(orjson.loads(line))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                reason = f"not a {record_type.__name__} record ({type(exc).__name__}: {exc})"
                raise DataError(str(path), reason, line=line_number) from None


def read_generations(path: Path) -> list[Generation]:
    return generations.read_generations(path)


def read_judgments(path: Path) -> list[Judgment]:
    return list(_read_records(path, Judgment))


def write_json(data: Any, path: Path) -> None:
    write_bytes(path, orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
