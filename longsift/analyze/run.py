"""All analyses at once, over records (`analyze_records`) or files and run directories (`analyze`).

The result is one JSON-ready dict, written to RUN_DIR/analyze/analysis.json for a run directory:

    unit            {"name", "description", "source", ...}: the length unit of every length below (`source` says
                    whether it was asked for or is the unit the selection was made in)
    settings        tolerance, edges, bootstrap resamples, seed, histogram bins
    lengths         {"models": {model: {"all": stats, "by_eval_set": {set: stats}}}, "histogram": {...}}
    comparisons     [{"model_a", "model_b", "judge", "prompts", "policies": {policy: length_bias + "skipped"}}];
                    each policy's "length_only_agreement" {"n", "agreement_pct", "kappa", "chance", "confusion",
                    "labels"}: the judge against a length-only judge (longer wins, in `unit`) on the same pairs
    position_bias   [{"judge", "flip_rate", "first_position_share", ...}]
    judge_agreement [{"judge_1", "judge_2", "shared_prompts", "policies": {policy: kappa stats}}]
    selection       {"unit", "source": profile | None, "subsets": {name: profile}} or None
    inputs          the files read
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from longsift import layout
from longsift.analyze.judges import judge_agreement, outcomes_by_judge, position_bias
from longsift.analyze.length_bias import DEFAULT_EDGES, DEFAULT_TOLERANCE, length_bias, length_pairs
from longsift.analyze.lengths import length_distributions, response_lengths
from longsift.analyze.selection import compare_selections
from longsift.errors import ConfigError, DataError
from longsift.formats.load import load_all
from longsift.lengths import DEFAULT_UNIT, Unit, check_units, get_unit, unit_record
from longsift.records import Example, Generation, Judgment
from longsift.verdicts import POLICIES


def analyze_records(
    judgments: Iterable[Judgment], generations: Iterable[Generation], *, unit: Unit,
    tolerance: float = DEFAULT_TOLERANCE, edges: Sequence[float] = DEFAULT_EDGES, bootstrap: int = 1000,
    seed: int = 0, bins: int = 20,
) -> dict[str, Any]:  # fmt: skip
    """Length distributions, length bias per comparison and policy, position bias and judge agreement."""
    judgments = list(judgments)
    lengths = response_lengths(generations, unit)
    comparisons = []
    for judge, pairs in outcomes_by_judge(judgments).items():
        for (model_a, model_b), outcomes in pairs.items():
            lengths_a = {(s, p): n for (m, s, p), n in lengths.items() if m == model_a}
            lengths_b = {(s, p): n for (m, s, p), n in lengths.items() if m == model_b}
            policies = {}
            for policy in POLICIES:
                matched, skipped = length_pairs(outcomes, lengths_a, lengths_b, policy)
                bias = length_bias(matched, edges=edges, tolerance=tolerance, n_resamples=bootstrap, seed=seed)
                policies[policy] = {**bias, "skipped": skipped}
            comparisons.append({
                "model_a": model_a, "model_b": model_b, "judge": judge, "prompts": len(outcomes), "policies": policies,
            })  # fmt: skip
    return {
        "unit": unit_record(unit),
        "settings": {"tolerance": tolerance, "edges": list(edges), "bootstrap": bootstrap, "seed": seed, "bins": bins},
        "lengths": length_distributions(lengths, bins),
        "comparisons": comparisons,
        "position_bias": position_bias(judgments),
        "judge_agreement": judge_agreement(judgments),
        "selection": None,
    }


def analyze(
    paths: Sequence[Path] = (), *, generations: Sequence[Path] = (), selection: Sequence[Path] = (),
    source: Path | None = None, by: str | None = None, tokenizer: str | Path | None = None,
    tolerance: float = DEFAULT_TOLERANCE, bootstrap: int = 1000, seed: int = 0, output: Path | None = None,
    unit: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Analyze one run directory, or judgments files (each a judgments.jsonl or a folder holding one).

    For a run directory, generations, selected subsets and the selection's source (their manifests' "source")
    are found in it; explicit options add to them. Lengths are counted in `by` (any unit `select` takes;
    `unit` is its former name), by default in the unit the selection was made in (select/summary.json, or a
    subset's `<name>.manifest.json`), else in the registry's DEFAULT_UNIT (chars). The result goes to `output`,
    by default RUN_DIR/analyze/analysis.json for a run directory (nothing is written for bare files without
    `output`).
    """
    if not (paths or generations or selection):
        raise ConfigError("nothing to analyze: give a run directory, judgments files, --generations or --selection")
    run_dir = Path(paths[0]) if len(paths) == 1 and layout.is_run_dir(Path(paths[0])) else None
    judgment_files = _judgment_files(run_dir, paths)
    generation_files = [*(layout.generation_files(run_dir) if run_dir else []), *map(Path, generations)]
    selection_files = [*(layout.selected_files(run_dir) if run_dir else []), *map(Path, selection)]
    by = by or unit
    chosen = {"source": "asked"} if by or tokenizer else selection_unit(run_dir, selection_files)
    if chosen.get("by"):
        by, tokenizer = chosen["by"], chosen.get("tokenizer")
    by = by or DEFAULT_UNIT
    check_units(by, tokenizer)
    counter = get_unit(by, str(tokenizer) if tokenizer and by == "tokens" else None)
    if source is None and run_dir is not None:
        source = _manifest_source(run_dir)
    judgments = [j for path in judgment_files for j in layout.read_judgments(path)]
    records = [g for path in generation_files for g in layout.read_generations(path)]
    result = analyze_records(judgments, records, unit=counter, tolerance=tolerance, bootstrap=bootstrap, seed=seed)
    result["unit"]["source"] = chosen["source"]
    if selection_files:
        subsets = {_subset_name(path): _examples(path) for path in selection_files}
        result["selection"] = compare_selections(subsets, _examples(source) if source else None, counter)
        result["selection"]["source_path"] = str(source) if source else None
    result["inputs"] = {
        "run_dir": str(run_dir) if run_dir else None, "judgments": [str(p) for p in judgment_files],
        "generations": [str(p) for p in generation_files],
        "selection": [str(p) for p in selection_files], "source": str(source) if source else None,
    }  # fmt: skip
    output = output or (layout.analysis_file(run_dir) if run_dir else None)
    if output is not None:
        layout.write_json(result, output)
    return result


def selection_unit(run_dir: Path | None, selection_files: Sequence[Path]) -> dict[str, Any]:
    """The unit the selection was made in: {"by", "tokenizer", "source"}, or {"source": "default"} when the
    selections name none or disagree. Length-based selections (`longest`) decide over the others (a random
    subset's unit says nothing about the study's unit)."""
    summaries = []
    if run_dir is not None and (layout.select_dir(run_dir) / layout.SUMMARY).is_file():
        data = layout.read_json(layout.select_dir(run_dir) / layout.SUMMARY)
        summaries += [v for v in data.values() if isinstance(v, Mapping)] if isinstance(data, Mapping) else []
    for path in selection_files:
        record = layout.selection_manifest(path)  # `longsift select`'s side file
        if record is not None:
            summaries.append(record.summary)
    units = [(s, s["unit"]) for s in summaries if isinstance(s.get("unit"), Mapping) and s["unit"].get("unit")]
    by_length = [u for s, u in units if (s.get("method") or {}).get("method") == "longest"] or [u for _, u in units]
    found = {(u["unit"], u.get("tokenizer")) for u in by_length}
    if len(found) != 1:
        return {"source": "default"}
    ((name, tokenizer),) = found
    return {"by": name, "tokenizer": tokenizer, "source": "selection"}


def _judgment_files(run_dir: Path | None, paths: Sequence[Path]) -> list[Path]:
    if run_dir is not None:
        return [d / layout.JUDGMENTS for d in layout.judge_dirs(run_dir) if (d / layout.JUDGMENTS).is_file()]
    files = []
    for path in map(Path, paths):
        file = path / layout.JUDGMENTS if path.is_dir() else path
        if not file.is_file():
            raise ConfigError(f"{path}: neither a run directory nor a judgments file (expected {layout.JUDGMENTS})")
        files.append(file)
    return files


def _manifest_source(run_dir: Path) -> Path | None:
    """The corpus the run's selections were made from, as their manifests name it (input role "source")."""
    named = [
        source.given
        for path in layout.selected_files(run_dir)
        if (record := layout.selection_manifest(path)) is not None
        for source in record.inputs_with_role("source")
    ]
    sources = list(dict.fromkeys(named))
    where = str(layout.select_dir(run_dir))
    if not sources:
        return None
    if len(sources) > 1:
        raise DataError(where, f"the selections come from several sources ({', '.join(sources)}); pass --source PATH")
    for candidate in (Path(sources[0]), run_dir / sources[0]):
        if candidate.exists():
            return candidate
    raise DataError(where, f"the selection source {sources[0]!r} does not exist; pass --source PATH")


def _subset_name(path: Path) -> str:
    return Path(path.name.removesuffix(".gz")).stem


def _examples(path: Path) -> list[Example]:
    examples, _ = load_all(path)
    return examples
