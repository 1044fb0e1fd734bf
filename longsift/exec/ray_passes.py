"""LLM passes (score, refine) on Ray: one Ray Data actor pool over shards, each shard committed as it completes.

A shard's records go through the stage's own function (longsift.refine.score / refine, the one LLM engine) in an
actor; its output (`OUT.shards/part-NNNNN.jsonl`, messages layout) is written whole, then its completion marker
(`part-NNNNN.done.json`: the shard's counts, calls, cost, failures, the rows whose id is the record's own, and a
fingerprint of the shard and options: exec/commits.py). A rerun skips every shard whose marker matches, and what
a killed shard had already been answered comes from the shared SQLite cache (it is safe across processes): nothing
finished is redone, nothing answered is paid again.
The rate limits (--rpm/--tpm) are the cluster's: each of the W actors running at once gets 1/W of them (an even
split, not a shared limiter actor: the actors' loads are alike, and nothing is asked of another process per request).
A local model (--backend transformers, vllm) loads once per actor, in its constructor, on the GPUs it reserves
(--ray-gpus-per-worker), and serves every shard the actor runs. When every shard is
done the parts are joined in shard order into OUT (rows renumbered to the pool's, ids kept or renumbered by
select's rule: exec/shard_ids.py), with one quarantine and one
failures list. A dry run prints shards, rows, calls and cost, summed over the shards, and sends nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from longsift import formats
from longsift.exec import cluster, commits, shards
from longsift.exec.shard_ids import rebased
from longsift.formats.load import Quarantine, RecordStream
from longsift.outputs import side_path, write_bytes
from longsift.records import Example

# A pass is `fn(records, llm, options, output=...) -> result` with `.records`, `.report` (a PassReport) and
# `.dry_run`: a model-based scorer with that contract (IFD, embeddings: issue 14's selectors) is one line here.
STAGES = {"score": "longsift.refine.score:score", "refine": "longsift.refine.refine:refine"}


work_folder = commits.work_folder


def part_path(work: Path, index: int) -> Path:
    return work / f"part-{index:05d}.jsonl"


def fingerprint(stage: str, shard: str, options: Any, llm: Any) -> str:
    """What a marker must match to count as done: the shard and everything that shapes answers."""
    settings = llm.model_dump(mode="json", exclude={"progress", "dry_run", "rpm", "tpm", "concurrency", "cache"})
    return commits.fingerprint(stage=stage, shard=commits.identity(shard), options=options.model_dump(mode="json"),
                               llm=settings, model=commits.local_files(llm.model))  # fmt: skip


def stage_function(stage: str) -> Any:
    import importlib

    module, name = STAGES[stage].split(":")
    return getattr(importlib.import_module(module), name)


def run_shard(task: dict[str, Any], stage: str, options: Any, llm: Any, input_format: str | None,
              max_record_bytes: int, work: Path) -> dict[str, Any]:  # fmt: skip
    """Worker: the stage over one shard; the part, then its marker (dry run: the estimate only)."""
    index, shard = int(task["index"]), str(task["shard"])
    quarantine = Quarantine(part_path(work, index).with_suffix(".quarantine.jsonl"))
    with shards.local_copy(shard) as path:
        stream = RecordStream(path, input_format, quarantine=quarantine, max_record_bytes=max_record_bytes,
                              collect_ids=True)  # fmt: skip
        records = [_renamed(r, shard) for r in stream]
    result = stage_function(stage)(records, llm, options, output=part_path(work, index))
    report = stream.report
    counts = {"index": index, "shard": shard, "read": report.read, "kept": report.kept,
              "quarantined": report.quarantined,
              "own_ids": [row for row, _, _ in stream.own_ids or ()]}  # rows whose id is the record's own  # fmt: skip
    if result.dry_run is not None:
        return {**counts, "dry_run": dataclasses.asdict(result.dry_run)}
    formats.write(result.records, part_path(work, index), "messages")
    marker = {**counts, "fingerprint": task["fingerprint"], "total": result.report.total,
              "failed": len(result.report.failures), "sent": result.report.sent, "cached": result.report.cached,
              "cost": _cost(result.report.rounds),
              "failures": [f.to_dict() for f in result.report.failures]}  # fmt: skip
    commits.commit(work, index, marker)  # written last: the shard is done
    return marker


def _renamed(example: Example, shard: str) -> Example:
    return Example(example.id, example.messages, shard, example.row, example.metadata)


def _cost(rounds: Sequence[Any]) -> float | None:
    from longsift.refine.passes import cost

    return cost(rounds)


class PassShards:
    """A Ray Data actor: one stage over the shards it is given (its engine's limits: its share of the cluster's)."""

    def __init__(self, *args: Any) -> None:
        from longsift.llm.backends import hold_local_backend

        self.args = args
        llm = args[2]
        if not llm.dry_run:
            hold_local_backend(llm)  # a local model: loaded here, once, for every shard of this actor

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        tasks = [{"index": i, "shard": s, "fingerprint": f}
                 for i, s, f in zip(batch["index"], batch["shard"], batch["fingerprint"], strict=True)]  # fmt: skip
        return {"result": [orjson.dumps(run_shard(task, *self.args)) for task in tasks]}


@dataclass
class PassRun:
    """What the driver saw: every shard's marker (or dry-run estimate), in shard order, and what it skipped."""

    shards: list[dict[str, Any]]
    skipped: list[int]
    dry_run: bool = False


def run_pass(stage: str, source: Any, output: Path, options: Any, llm: Any, *, input_format: str | None = None,
             max_record_bytes: int = 0, workers: int | None = None, address: str | None = None,
             gpus_per_worker: float = 0.0, say: Any = print) -> PassRun:  # fmt: skip
    """`stage` over the shards of `source` on Ray; each shard committed as it completes (see the module)."""
    require_backend(llm.backend)
    ray = cluster.connect(address)
    found = shards.expand(source)
    output = output.resolve()  # the actors' working folders are not this one
    work = work_folder(output)
    work.mkdir(parents=True, exist_ok=True)
    cache = llm.cache_path(output)  # one cache for every actor: answered once, paid once
    llm = llm.but(cache=cache.resolve() if cache else None, progress=False)
    prints = [fingerprint(stage, shard, options, llm) for shard in found]  # the limits are not in a fingerprint
    done = {i: m for i in range(len(found)) if (m := commits.done_marker(work, i, prints[i])) is not None}
    todo = [{"index": i, "shard": s, "fingerprint": prints[i]} for i, s in enumerate(found) if i not in done]
    pool = cluster.actors(workers, max(1, len(todo)), gpus_per_worker)
    llm = llm.but(rpm=llm.rpm / pool if llm.rpm else None, tpm=llm.tpm / pool if llm.tpm else None)
    say(f"{stage} on ray: {len(found)} shard(s), {len(done)} already done, {len(todo)} to run on {pool} worker(s)")
    results: dict[int, dict[str, Any]] = dict(done)
    if todo:
        args = (stage, options, llm, input_format, max_record_bytes or options_limit(), work)
        dataset = ray.data.from_items(todo, override_num_blocks=len(todo)).map_batches(
            PassShards, fn_constructor_args=args, batch_size=1, compute=ray.data.ActorPoolStrategy(size=pool),
            num_cpus=1, num_gpus=gpus_per_worker or None, batch_format="default",
        )  # fmt: skip
        for row in dataset.iter_rows():
            marker = orjson.loads(row["result"])
            results[marker["index"]] = marker
            if not llm.dry_run:
                say(progress_line(stage, marker, [results[i] for i in sorted(results)], len(found)))
    ordered = [results[i] for i in range(len(found))]
    if llm.dry_run:
        say(dry_run_lines(stage, ordered, skipped=len(done)))
    return PassRun(ordered, sorted(done), dry_run=bool(llm.dry_run))


def require_backend(backend: str) -> None:
    """--backend vllm on Ray runs vLLM in each actor: without the package, one line before any cluster starts."""
    import importlib.util

    from longsift.errors import MissingDependencyError

    if backend == "vllm" and importlib.util.find_spec("vllm") is None:
        raise MissingDependencyError("vllm", "vllm", "--backend vllm --executor ray")


def options_limit() -> int:
    from longsift.formats.load import DEFAULT_MAX_RECORD_BYTES

    return DEFAULT_MAX_RECORD_BYTES


def progress_line(stage: str, marker: dict[str, Any], finished: list[dict[str, Any]], count: int) -> str:
    """One line per shard as it completes, with the totals over every finished shard (all workers)."""
    spent = [m["cost"] for m in finished]
    cost = "$?" if any(c is None for c in spent) else f"${sum(spent):.4f}"
    return (f"{stage}: shard {marker['index'] + 1}/{count} done ({marker['read']} rows, {marker['sent']} sent, "
            f"{marker['cached']} cached); {len(finished)}/{count} shards, {sum(m['read'] for m in finished)} rows, "
            f"{sum(m['sent'] for m in finished)} calls sent, spent {cost}")  # fmt: skip


def dry_run_lines(stage: str, ordered: list[dict[str, Any]], skipped: int) -> str:
    """Shards, rows, calls and cost over every shard still to run (done shards cost nothing)."""
    estimates = [m["dry_run"] for m in ordered if "dry_run" in m]
    costs = [e["cost"] for e in estimates]
    cost = "unknown" if any(c is None for c in costs) else f"${sum(costs):.4f}"
    rows = sum(m["read"] for m in ordered if "dry_run" in m)
    calls, to_send = sum(e["calls"] for e in estimates), sum(e["to_send"] for e in estimates)
    tokens = sum(e["input_tokens"] for e in estimates), sum(e["output_tokens"] for e in estimates)
    return "\n".join([
        f"{stage}: dry run on ray (nothing was sent)",
        f"  shards:         {len(estimates)} to run ({skipped} already done)",
        f"  rows:           {rows:,}",
        f"  calls:          {calls:,} distinct, {to_send:,} to send",
        f"  tokens:         {tokens[0]:,} input + {tokens[1]:,} output (estimated)",
        f"  estimated cost: {cost}",
    ])  # fmt: skip


def joined(run: PassRun, output: Path) -> Iterator[Example]:
    """Every shard's part in shard order, rows renumbered to the pool's (as one file would have them); ids as
    select's (exec/shard_ids.py)."""
    offset = 0
    work = work_folder(output.resolve())
    for marker in run.shards:
        part = RecordStream(part_path(work, marker["index"]), "messages")
        own = set(marker["own_ids"])
        for example in part:
            yield rebased(example, example.row, offset + example.row, example.row in own)
        offset += marker["read"]


def join_quarantine(run: PassRun, output: Path, quarantine: Path) -> int:
    """The shards' quarantines, in shard order, as one file; none: no file."""
    work = work_folder(output.resolve())
    parts = [part_path(work, m["index"]).with_suffix(".quarantine.jsonl") for m in run.shards]
    data = b"".join(p.read_bytes() for p in parts if p.is_file())
    if data:
        write_bytes(quarantine, data)
    else:
        quarantine.unlink(missing_ok=True)
    return sum(m["quarantined"] for m in run.shards)


def command_on_ray(stage: str, source: str, command: Any, options: Any, llm: Any, fmt: str) -> None:
    """`longsift score|refine --executor ray`: run, join, write OUT and its side files, the manifest, one summary."""
    from longsift.llm.outcomes import raise_if_failed, record_failure_kind
    from longsift.manifest import write_manifest

    output = Path(command.output)
    run = run_pass(stage, source, output, options, llm, input_format=command.input_format,
                   max_record_bytes=command.max_record_bytes, workers=command.ray_workers,
                   address=command.ray_address, gpus_per_worker=command.ray_gpus_per_worker, say=_err)  # fmt: skip
    if run.dry_run:
        return
    written = formats.write(joined(run, output), output, fmt)
    quarantined = join_quarantine(run, output, side_path(output, "quarantine.jsonl"))
    failures = [f for m in run.shards for f in m["failures"]]
    failures_file = side_path(output, "failures.jsonl")
    if failures:
        write_bytes(failures_file, b"".join(orjson.dumps(f) + b"\n" for f in failures))
    else:
        failures_file.unlink(missing_ok=True)
    resolved = {**command.model_dump(mode="json", exclude={"output"}), "output_format": fmt, "llm": llm.to_dict()}
    side = {"quarantine": side_path(output, "quarantine.jsonl"), "failures": failures_file}
    write_manifest(output, command=stage, options=resolved, inputs={"source": source},
                   outputs={"output": output, **{k: p for k, p in side.items() if p.exists()}})  # fmt: skip
    rows = sum(m["read"] for m in run.shards)
    _err(f"{source}: rows read {rows} = kept {rows - quarantined} + quarantined {quarantined}")
    _err(f"wrote {written} records to {output} ({fmt})")
    spent = [m["cost"] for m in run.shards]
    cost = "$?" if any(c is None for c in spent) else f"${sum(spent):.4f}"
    total = sum(m["total"] for m in run.shards)
    print(f"{stage}: {total} records over {len(run.shards)} shard(s) ({len(run.skipped)} done before): "
          f"{total - len(failures)} ok, {len(failures)} failed; {sum(m['sent'] for m in run.shards)} calls sent, "
          f"{sum(m['cached'] for m in run.shards)} cached, spent {cost}")  # fmt: skip
    kinds = (record_failure_kind(f["status"], f.get("error")) for f in failures)
    raise_if_failed(stage, total, [k for k in kinds if k is not None], llm.max_failed)


def _err(line: str) -> None:
    import sys

    print(line, file=sys.stderr, flush=True)
