"""The select stage: keep k records of a corpus by a method (longest, random, ...), with filters.

`select(source, method="longest", k=1000, by="nltk")` reads the source once (JSON lines in parallel
blocks), quarantines bad records, and returns the selected Examples in source order plus a summary.
A new method is one small module (a class with `name`, `needs_example`, `uses_length`, `keys`,
`describe`) and one line in SELECTORS. A method that needs the whole pool at once (kcenter, diverse) has
`pool = True` and `choose(examples, lengths, k)` instead of keys; a filter (dedup-minhash, dedup-semantic) has
`keep(examples, lengths)`. `--where` and `--chain` filters run before the method (select/pool.py).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from longsift import formats
from longsift.errors import ConfigError, UsageError
from longsift.formats import rows as containers
from longsift.formats.load import LoadReport, Quarantine, RecordStream, Rejection
from longsift.formats.rows import Limits
from longsift.lengths import DEFAULT_UNIT, check_units, get_unit
from longsift.records import Example
from longsift.registry import Registry
from longsift.select.options import SelectOptions
from longsift.select.scan import Outcome, materialize, scan_records, scan_text
from longsift.select.scoring import Method, Plan

if TYPE_CHECKING:
    from longsift.exec.ray_select import Merged

SELECTORS: Registry[Callable[..., Method]] = Registry("selection method")
SELECTORS.register("longest", "longsift.select.longest:Longest")
SELECTORS.register("random", "longsift.select.random:RandomK")
SELECTORS.register("llm-score", "longsift.select.llm_score:ScoreThreshold")
SELECTORS.register("top-score", "longsift.select.llm_score:TopScore")
SELECTORS.register("ifd", "longsift.select.ifd:IFD")
SELECTORS.register("superfilter", "longsift.select.superfilter:Superfilter")
SELECTORS.register("kcenter", "longsift.select.kcenter:KCenter")
SELECTORS.register("diverse", "longsift.select.diverse:Diverse")
SELECTORS.register("dedup-minhash", "longsift.select.dedup:MinHashDedup")
SELECTORS.register("dedup-semantic", "longsift.select.dedup:SemanticDedup")

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
    **method_options: Any,
) -> Plan:  # fmt: skip
    """method_options: the method's own settings (model, encoder, ...), passed where its class has the field."""
    if k is not None and k < 0:
        raise ConfigError(f"k must be >= 0, got {k}")
    if min_length is not None and max_length is not None and min_length > max_length:
        raise ConfigError(f"--min-response-length {min_length} is above --max-response-length {max_length}")
    check_units(by, tokenizer)  # unknown units, or a tokenizer given for another unit, fail early
    factory = SELECTORS.get(method)
    accepted: set[str] = {f.name for f in dataclasses.fields(factory)} if dataclasses.is_dataclass(factory) else set()
    if threshold is not None and "threshold" not in accepted:
        raise ConfigError(f"--threshold applies to score-threshold methods (llm-score), not to {method!r}")
    options = {**method_options, "seed": seed, "threshold": threshold}
    chosen = factory(**{name: value for name, value in options.items() if name in accepted and value is not None})
    return Plan(chosen, by, tokenizer, k, min_length, max_length, drop_empty_input, dedup, keep_payload)


def select(
    source: Source, method: str | None = None, k: int | None = None, *, options: SelectOptions | None = None,
    quarantine: str | Path | Quarantine | None = None, limits: Limits | None = None,
    on_progress: Callable[[int, int], None] | None = None, on_reject: Callable[[Rejection], None] | None = None,
    run_folder: str | Path | None = None, **fields: Any,
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
    reading (default: the options' max_record_bytes, max_depth, max_gzip_ratio). `run_folder` (--executor ray):
    each shard's result is committed there as it completes, and a rerun with the same folder, shards and options
    scans only the shards not done (the CLI: `OUT.shards/` beside the output).
    """
    positional = {name: value for name, value in (("method", method), ("k", k)) if value is not None}
    if options is None:
        options = SelectOptions.from_keywords({**positional, **fields}, "select()")
    elif positional or fields:
        options = SelectOptions.from_keywords({**options.model_dump(exclude_unset=True), **positional, **fields},
                                            "select()")  # fmt: skip
    return _select(source, options, quarantine, limits or options.limits(), on_progress, on_reject, run_folder)


def _select(
    source: Source, options: SelectOptions, quarantine: str | Path | Quarantine | None, limits: Limits,
    on_progress: Callable[[int, int], None] | None, on_reject: Callable[[Rejection], None] | None,
    run_folder: str | Path | None = None,
) -> Selection:  # fmt: skip
    k, by, tokenizer, seed = options.k, options.unit(), options.tokenizer, options.seed
    min_length, max_length, dedup = options.min_response_length, options.max_response_length, options.dedup
    drop_empty_input, threshold, workers = options.drop_empty_input, options.threshold, options.workers
    format = options.input_format
    filters, method = chain_of(options)
    plan = make_plan(method, k, by=by, tokenizer=tokenizer, seed=seed, min_length=min_length,
                     max_length=max_length, dedup=dedup, drop_empty_input=drop_empty_input,
                     threshold=threshold, **method_options(options))  # fmt: skip
    steps = [filter_step(step, options) for step in filters]
    started = time.perf_counter()
    pooled = bool(steps) or getattr(plan.method, "pool", False)
    outcome: Outcome | Merged
    if pooled and options.uses_ray() and (steps or not hasattr(plan.method, "pick")):
        raise UsageError(f"--executor ray does not run --where/--chain or the {method!r} method yet; "
                         "use --executor local")  # fmt: skip
    if pooled and options.uses_ray():  # embedded per shard on Ray, chosen over all of them here (exec/ray_pool.py)
        from longsift.exec import ray_pool

        sink = quarantine if isinstance(quarantine, Quarantine) else Quarantine(quarantine)
        outcome, name, examples, lengths = ray_pool.select(
            source, plan, format=format, limits=limits, workers=workers, address=options.ray_address, quarantine=sink,
            on_progress=on_progress, lines=not options.quiet, gpus_per_worker=options.ray_gpus_per_worker,
        )  # fmt: skip
    elif pooled:
        from longsift.select.pool import select_pool

        outcome, name, examples, lengths = select_pool(plan, steps, source, format=format, workers=workers,
                                                       quarantine=quarantine, limits=limits, on_progress=on_progress,
                                                       on_reject=on_reject)  # fmt: skip
    elif options.uses_ray():  # the same scan per shard on a Ray cluster, merged exactly (longsift/exec)
        from longsift.exec import ray_select

        sink = quarantine if isinstance(quarantine, Quarantine) else Quarantine(quarantine)
        merged, name = ray_select.select(source, plan, format=format, limits=limits, workers=workers,
                                         address=options.ray_address, quarantine=sink, on_progress=on_progress,
                                         lines=not options.quiet,
                                         gpus_per_worker=options.ray_gpus_per_worker,
                                         work=Path(run_folder) if run_folder is not None else None)  # fmt: skip
        examples, lengths = ray_select.materialize(merged)
        examples = annotated(plan.method, merged, examples)
        outcome = merged
    else:
        outcome, name = run(plan, source, format=format, workers=workers, quarantine=quarantine, limits=limits,
                            on_progress=on_progress, on_reject=on_reject)  # fmt: skip
        examples, lengths = materialize(outcome, name)
        examples = annotated(plan.method, outcome, examples)
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
                 "drop_empty_input": drop_empty_input, "input_format": format,
                 **({"chain": [*filters, method]} if filters else {})},
    )  # fmt: skip
    return Selection(examples, lengths, summary)


def chain_of(options: SelectOptions) -> tuple[list[str], str]:
    """The filters (in order: --where first, then the chain's) and the method of a selection."""
    filters = [options.where] if options.where else []
    if not options.chain:
        return filters, options.method
    steps = [step.strip() for step in options.chain.split("->")]
    if any(not step for step in steps):
        raise ConfigError(f"--chain {options.chain!r}: an empty step")
    default = SelectOptions.model_fields["method"].default  # a recipe's narrowed options mark every field as set
    if options.method not in (steps[-1], default):
        raise ConfigError(f"--chain ends with {steps[-1]!r} but --method is {options.method!r}: give one of them")
    from longsift.select.where import is_expression

    if is_expression(steps[-1]):
        raise ConfigError(f"--chain {options.chain!r}: the last step must be a method, not a filter expression")
    return filters + steps[:-1], steps[-1]


def method_options(options: SelectOptions) -> dict[str, Any]:
    """The options a method class may take, by field name (each class takes the fields it declares)."""
    names = ("model", "ifd_max_length", "ifd_prompt", "keep_ifd_above_one", "encoder", "cache_dir", "device",
             "trust_remote_code", "batch_size", "score_field", "min_distance", "minhash_threshold",
             "minhash_permutations", "shingle_words", "semantic_threshold")  # fmt: skip
    return {name: getattr(options, name) for name in names if getattr(options, name) is not None}


def filter_step(step: str, options: SelectOptions) -> Any:
    """A chain step before the method: a --where expression, or a method that filters (dedup-minhash, ...)."""
    from longsift.select.where import compile_where, is_expression

    if is_expression(step):
        return compile_where(step)
    plan = make_plan(step, None, seed=options.seed, **method_options(options))
    if not hasattr(plan.method, "keep"):
        raise ConfigError(f"{step!r} is not a filter (filters: --where expressions, dedup-minhash, dedup-semantic)")
    return plan.method


def annotated(method: Any, outcome: Outcome | Merged, examples: list[Example]) -> list[Example]:
    """Selected records with the method's score in their metadata (e.g. `ifd`), where the method names a key."""
    key = getattr(method, "metadata_key", None)
    if key is None:
        return examples
    scores = [score for score, _, _ in outcome.heap.items()]
    return [example.with_metadata(**{key: score}) for example, score in zip(examples, scores, strict=True)]


def run(
    plan: Plan, source: Source, *, format: str | None = None, workers: int | None = None,
    quarantine: str | Path | Quarantine | None = None, limits: Limits | None = None,
    on_progress: Callable[[int, int], None] | None = None, on_reject: Callable[[Rejection], None] | None = None,
) -> tuple[Outcome, str]:  # fmt: skip
    """Scan `source` with `plan`: parallel blocks for JSON lines and arrays, else a record stream."""
    limits = limits or Limits()
    sink = quarantine if isinstance(quarantine, Quarantine) else Quarantine(quarantine)
    if plan.by == "tokens" and plan.needs_length and get_unit(plan.by, plan.tokenizer).fast is None:
        workers = 1  # transformers' tokenizer (torch imported): one process, its batch calls on every core
    if getattr(plan.method, "in_process", False):
        workers = 1  # a model (ifd) loads once, here, and batches its own forward passes
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
        source = RecordStream(name, format, quarantine=sink, limits=limits, on_reject=on_reject,
                              collect_ids=plan.own_ids)  # fmt: skip
    if isinstance(source, RecordStream):
        outcome = scan_records(source, plan, source.report, workers=workers)
        outcome.own_ids = source.own_ids
        return outcome, source.source
    report = LoadReport("<records>")
    return scan_records(_counted(source, report), plan, report, workers=workers), "<records>"


def _counted(records: Iterable[Example], report: LoadReport) -> Iterable[Example]:
    for record in records:
        report.read += 1
        report.kept += 1
        yield record
