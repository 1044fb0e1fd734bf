"""Generation files: read and write them, and export them for AlpacaEval and FastChat MT-Bench.

The longsift layout is JSON lines, one `Generation` per prompt, in eval-set order:
    {"prompt_id": "koala_0", "eval_set": "koala", "model": "NAME", "turns": [...], "outputs": [...],
     "metadata": {...prompt metadata (dataset, question_id, category, ...), "generation": {template, finish_reasons,
     new_tokens, max_new_tokens, backend, ...}}}
This module imports no torch: the judge stage reads generations through it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from longsift.errors import DataError
from longsift.outputs import write_jsonl, write_text
from longsift.records import Generation


def iter_generations(path: str | Path) -> Iterator[Generation]:
    path = Path(path)
    if not path.is_file():
        raise DataError(str(path), "generation file not found")
    with path.open("rb") as handle:
        for line_no, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                yield Generation.from_dict(orjson.loads(line))
            except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                raise DataError(str(path), f"not a generation record: {exc}", line=line_no) from None


def read_generations(path: str | Path) -> list[Generation]:
    """All records; for a resumable partial file, the last record of a prompt wins."""
    latest: dict[str, Generation] = {}
    for generation in iter_generations(path):
        latest.pop(generation.prompt_id, None)
        latest[generation.prompt_id] = generation
    return list(latest.values())


def read_partial(path: Path) -> list[Generation]:
    """A resumable partial file, as `read_generations`; a last line torn by a kill is cut off the file, so that
    the next append starts on a line of its own (the answer it held is generated again)."""
    with path.open("r+b") as handle:
        data = handle.read()
        whole = data.rfind(b"\n") + 1
        if whole < len(data):
            handle.truncate(whole)
    return read_generations(path)


def write_generations(generations: Iterable[Generation], path: str | Path) -> int:
    """All at once: written to a temporary file and renamed onto `path` when complete."""
    return write_jsonl(generations, path)


def append_generation(generation: Generation, path: Path) -> None:
    with path.open("ab") as handle:
        handle.write(orjson.dumps(generation.to_dict()) + b"\n")


def to_alpacaeval(generation: Generation, generator: str | None = None) -> dict[str, Any]:
    """`dataset` is AlpacaEval's source set (helpful_base, koala, ...), written only when the prompt carried it."""
    entry = {
        "instruction": generation.instruction,
        "output": generation.output,
        "generator": generator or generation.model,
    }
    if "dataset" in generation.metadata:
        entry["dataset"] = generation.metadata["dataset"]
    return entry


def write_alpacaeval(generations: Iterable[Generation], path: str | Path, generator: str | None = None) -> int:
    """AlpacaEval's model_outputs.json: a JSON list of {instruction, output, generator, dataset}."""
    items = [to_alpacaeval(g, generator) for g in generations]
    write_text(path, json.dumps(items, indent=2, ensure_ascii=False) + "\n")
    return len(items)


def answer_id(model_id: str, question_id: Any, outputs: Iterable[str]) -> str:
    """A stable 22-character id (FastChat uses a random shortuuid; a hash keeps reruns identical)."""
    digest = hashlib.sha256(orjson.dumps([model_id, question_id, list(outputs)])).hexdigest()
    return digest[:22]


def to_mtbench(generation: Generation, model_id: str | None = None, tstamp: float | None = None) -> dict[str, Any]:
    model = model_id or generation.model
    question_id = generation.metadata.get("question_id")
    if question_id is None:
        raise DataError(generation.prompt_id, "MT-Bench answers need metadata.question_id (generate on 'mtbench')")
    return {
        "question_id": question_id,
        "answer_id": answer_id(model, question_id, generation.outputs),
        "model_id": model,
        "choices": [{"index": 0, "turns": list(generation.outputs)}],
        "tstamp": tstamp if tstamp is not None else time.time(),
    }


def write_mtbench_answers(generations: Iterable[Generation], path: str | Path, model_id: str | None = None) -> int:
    """FastChat's llm_judge answer file (data/mt_bench/model_answer/MODEL.jsonl), sorted by question_id."""
    records = sorted((to_mtbench(g, model_id) for g in generations), key=lambda r: r["question_id"])
    write_text(path, "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records))
    return len(records)
