"""The select stage: keep k records of a corpus by a method (longest, random, ...), with filters.

`select(source, method="longest", k=1000, by="nltk")` reads the source once (JSON lines in parallel
blocks), quarantines bad records, and returns the selected Examples in source order plus a summary.
A new method is one small module (a class with `name`, `needs_example`, `uses_length`, `keys`,
`describe`) and one line in SELECTORS.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longsift import formats
from longsift.errors import ConfigError
from longsift.formats import rows as containers
from longsift.formats.load import LoadReport, Quarantine, RecordStream, Rejection
from longsift.formats.rows import Limits
from longsift.lengths import DEFAULT_UNIT, check_units, get_unit
from longsift.records import Example
from longsift.registry import Registry
from longsift.select.options import SelectOptions
from longsift.select.scan import Outcome, materialize, scan_records, scan_text
from longsift.select.scoring import Method, Plan

SELECTORS: Registry[Callable[..., Method]] = Registry("selection method")
SELECTORS.register("longest", "longsift.select.longest:Longest")
SELECTORS.register("random", "longsift.select.random:RandomK")
SELECTORS.register("llm-score", "longsift.select.llm_score:ScoreThreshold")
SELECTORS.register("top-score", "longsift.select.llm_score:TopScore")

Source = str | Path | RecordStream | Iterable[Example]


@dataclass
class SelectionSummary:
    source: str
    method: dict[str, Any]
    unit: dict[str, Any] | None
    k: int | None
    rows_read: int
    rows_kept: int
    rows_quarantined: int
    selected: int
    cutoff_length: int | None  # the shortest selected length (for `longest`: the cut-off)
    dropped: dict[str, int] = field(default_factory=dict)
    exact_counts: int = 0  # records whose length was counted exactly (the rest were pruned by bounds)
    quarantine_path: str | None = None
    layout: str | None = None
    workers: int = 1
    seconds: float = 0.0
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def lines(self) -> list[str]:
        unit = self.unit["unit"] if self.unit else "-"
        out = [
            f"{self.source}: rows read {self.rows_read} = kept {self.rows_kept} + quarantined {self.rows_quarantined}"
            + (f" (see {self.quarantine_path})" if self.rows_quarantined and self.quarantine_path else ""),
            f"selected {self.selected} of {self.rows_kept} by {self.method['method']} (unit {unit}"
            + (f", cut-off {self.cutoff_length} {unit}" if self.cutoff_length is not None else "")
            + (f", seed {self.method['seed']}" if "seed" in self.method else "")
            + f") in {self.seconds:.2f}s with {self.workers} worker(s)",
        ]
        if self.dropped:
            out.append("not selectable: " + ", ".join(f"{reason} {n}" for reason, n in sorted(self.dropped.items())))
        if self.unit and self.unit.get("punkt"):
            out.append(f"nltk sentence splitter: {self.unit['punkt']}")
        return out


@dataclass
class Selection:
    examples: list[Example]
    lengths: list[int | None]
    summary: SelectionSummary


def make_plan(
    method: str = "longest", k: int | None = None, *, by: str = DEFAULT_UNIT, tokenizer: str | None = None,
    seed: int = 0, min_length: int | None = None, max_length: int | None = None, dedup: bool = False,
    drop_empty_input: bool = False, keep_payload: bool = True, threshold: float | None = None,
) -> Plan:  # fmt: skip
    if k is not None and k < 0:
        raise ConfigError(f"k must be >= 0, got {k}")
    if min_length is not None and max_length is not None and min_length > max_length:
        raise ConfigError(f"--min-response-length {min_length} is above --max-response-length {max_length}")
    check_units(by, tokenizer)  # unknown units, or a tokenizer given for another unit, fail early
    factory = SELECTORS.get(method)
    accepted: set[str] = {f.name for f in dataclasses.fields(factory)} if dataclasses.is_dataclass(factory) else set()
    if threshold is not None and "threshold" not in accepted:
        raise ConfigError(f"--threshold applies to score-threshold methods (llm-score), not to {method!r}")
    options = {"seed": seed, "threshold": threshold}
    chosen = factory(**{name: value for name, value in options.items() if name in accepted and value is not None})
    return Plan(chosen, by, tokenizer, k, min_length, max_length, drop_empty_input, dedup, keep_payload)


def select(
    source: Source, method: str | None = None, k: int | None = None, *, options: SelectOptions | None = None,
    quarantine: str | Path | Quarantine | None = None, limits: Limits | None = None,
    on_progress: Callable[[int, int], None] | None = None, on_reject: Callable[[Rejection], None] | None = None,
    **fields: Any,
) -> Selection:  # fmt: skip
    """Select k records of `source` (file, folder, hub id, RecordStream or Examples).

    The options are `SelectOptions` (longsift/select/options.py, the same as `longsift select`'s flags and a
    recipe's select keys): pass the model as `options`, or its fields as keywords (`by="nltk"`,
    `min_response_length=20`, ...), validated by the model. `method` and `k` may be given positionally.
    method: a SELECTORS name. by: a length unit (chars, words, tokens with `tokenizer`, nltk).
    threshold: for `llm-score`, the lowest `metadata.score` that may be sampled (default 4.5).
    Ties: equal keys keep the earlier source row. `dedup` drops exact duplicate conversations (the first
    occurrence wins) and holds 16 bytes per distinct record. `drop_empty_input` drops records whose
    Alpaca `input` is empty (for chat layouts: whose user turns are all blank). `workers`: processes
    (default: one per core). Output is in ascending source-row order. `limits`: bounds applied while
    reading (default: the options' max_record_bytes, max_depth, max_gzip_ratio).
    """
    positional = {name: value for name, value in (("method", method), ("k", k)) if value is not None}
    if options is None:
        options = SelectOptions.from_keywords({**positional, **fields}, "select()")
    elif positional or fields:
        options = SelectOptions.from_keywords({**options.model_dump(exclude_unset=True), **positional, **fields},
                                            "select()")  # fmt: skip
    return _select(source, options, quarantine, limits or options.limits(), on_progress, on_reject)


def _select(
    source: Source, options: SelectOptions, quarantine: str | Path | Quarantine | None, limits: Limits,
    on_progress: Callable[[int, int], None] | None, on_reject: Callable[[Rejection], None] | None,
) -> Selection:  # fmt: skip
    method, k, by, tokenizer, seed = options.method, options.k, options.unit(), options.tokenizer, options.seed
    min_length, max_length, dedup = options.min_response_length, options.max_response_length, options.dedup
    drop_empty_input, threshold, workers = options.drop_empty_input, options.threshold, options.workers
    format = options.input_format
    plan = make_plan(method, k, by=by, tokenizer=tokenizer, seed=seed, min_length=min_length,
                     max_length=max_length, dedup=dedup, drop_empty_input=drop_empty_input,
                     threshold=threshold)  # fmt: skip
    started = time.perf_counter()
    outcome, name = run(plan, source, format=format, workers=workers, quarantine=quarantine, limits=limits,
                        on_progress=on_progress, on_reject=on_reject)  # fmt: skip
    examples, lengths = materialize(outcome, name)
    report = outcome.report
    unit = get_unit(by, tokenizer).describe() if plan.needs_length else None
    known = [n for n in lengths if n is not None]
    summary = SelectionSummary(
        source=name, method=plan.method.describe(), unit=unit, k=k, rows_read=report.read, rows_kept=report.kept,
        rows_quarantined=report.quarantined, selected=len(examples),
        cutoff_length=min(known) if known and plan.method.uses_length else None,
        dropped=dict(outcome.dropped), exact_counts=outcome.exact_counts,
        quarantine_path=str(report.quarantine_path) if report.quarantine_path else None,
        layout=outcome.layout, workers=outcome.workers, seconds=time.perf_counter() - started,
        options={"min_response_length": min_length, "max_response_length": max_length, "dedup": dedup,
                 "drop_empty_input": drop_empty_input, "input_format": format},
    )  # fmt: skip
    return Selection(examples, lengths, summary)


def run(
    plan: Plan, source: Source, *, format: str | None = None, workers: int | None = None,
    quarantine: str | Path | Quarantine | None = None, limits: Limits | None = None,
    on_progress: Callable[[int, int], None] | None = None, on_reject: Callable[[Rejection], None] | None = None,
) -> tuple[Outcome, str]:  # fmt: skip
    """Scan `source` with `plan`: parallel blocks for JSON lines and arrays, else a record stream."""
    limits = limits or Limits()
    sink = quarantine if isinstance(quarantine, Quarantine) else Quarantine(quarantine)
    if plan.by == "tokens" and plan.needs_length:
        workers = 1  # a fast tokenizer already uses every core inside one batch call
    if plan.needs_length and not plan.bounds_only:
        get_unit(plan.by, plan.tokenizer)  # load once here: forked workers inherit it, loaded
    if plan.prunes and not plan.bounds_only and plan.floor is None and isinstance(source, str | Path):
        # A cheap first pass over NLTK lower bounds: the k-th largest is a floor no selected record is
        # below, so the exact (slow) count runs only on records whose upper bound reaches it.
        first = dataclasses.replace(plan, bounds_only=True, keep_payload=False)
        outcome, _ = run(first, source, format=format, workers=workers, limits=limits)
        plan = dataclasses.replace(plan, floor=outcome.heap.threshold())
    if isinstance(source, str | Path):
        name = str(source)
        opened = containers.Opened(Path(name), limits) if Path(name).is_file() else None  # the one handle
        try:
            container = formats.container_of(name, format, opened)
            if container in ("jsonl", "json") and opened is not None:
                layout = format if format in formats.SCHEMAS else None
                outcome = scan_text(opened, container, plan, format=layout, quarantine=sink, workers=workers,
                                    on_progress=on_progress, on_reject=on_reject)  # fmt: skip
                return outcome, name
        finally:
            if opened is not None:
                opened.close()
        source = RecordStream(name, format, quarantine=sink, limits=limits, on_reject=on_reject)
    if isinstance(source, RecordStream):
        outcome = scan_records(source, plan, source.report, workers=workers)
        return outcome, source.source
    report = LoadReport("<records>")
    return scan_records(_counted(source, report), plan, report, workers=workers), "<records>"


def _counted(records: Iterable[Example], report: LoadReport) -> Iterable[Example]:
    for record in records:
        report.read += 1
        report.kept += 1
        yield record
