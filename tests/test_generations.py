"""Generation files and their exports (AlpacaEval model_outputs.json, FastChat MT-Bench answers)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from longsift.generations import (
    append_generation,
    read_generations,
    write_alpacaeval,
    write_generations,
    write_mtbench_answers,
)
from longsift.records import Generation

GENS = [
    Generation("alpacaeval_0", "alpacaeval", "m", ("Q0",), ("A0",), {"dataset": "helpful_base"}),
    Generation("alpacaeval_1", "alpacaeval", "m", ("Q1",), ("A1",), {"dataset": "koala"}),
]
MT = [
    Generation("mtbench_82", "mtbench", "m", ("a", "b"), ("x", "y"), {"question_id": 82}),
    Generation("mtbench_81", "mtbench", "m", ("c", "d"), ("z", "w"), {"question_id": 81}),
]


def test_round_trip_and_last_record_wins(tmp_path: Path):
    path = tmp_path / "g.jsonl"
    assert write_generations(GENS, path) == 2
    assert read_generations(path) == GENS
    append_generation(Generation("alpacaeval_0", "alpacaeval", "m", ("Q0",), ("new",), {}), path)
    assert [g.output for g in read_generations(path)] == ["A1", "new"]


def test_alpacaeval_model_outputs(tmp_path: Path, data_dir: Path):
    path = tmp_path / "model_outputs.json"
    write_alpacaeval(GENS, path, generator="tiny")
    items = json.loads(path.read_text())
    assert items == [
        {"instruction": "Q0", "output": "A0", "generator": "tiny", "dataset": "helpful_base"},
        {"instruction": "Q1", "output": "A1", "generator": "tiny", "dataset": "koala"},
    ]
    published = json.loads((data_dir / "alpaca_eval" / "model_outputs" / "alpaca-7b.json").read_text())[0]
    assert set(items[0]) == set(published)


def test_mtbench_answers_have_fastchats_layout(tmp_path: Path, data_dir: Path):
    path = tmp_path / "tiny.jsonl"
    write_mtbench_answers(MT, path, model_id="tiny")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    reference = json.loads((data_dir / "mt_bench" / "reference_answer_gpt-4.jsonl").read_text().splitlines()[0])
    assert [r["question_id"] for r in rows] == [81, 82]
    assert set(rows[0]) == set(reference) and set(rows[0]["choices"][0]) == set(reference["choices"][0])
    assert rows[0]["choices"] == [{"index": 0, "turns": ["z", "w"]}] and rows[0]["model_id"] == "tiny"
    write_mtbench_answers(MT, tmp_path / "again.jsonl", model_id="tiny")
    again = [json.loads(line) for line in (tmp_path / "again.jsonl").read_text().splitlines()]
    assert [r["answer_id"] for r in again] == [r["answer_id"] for r in rows]  # stable ids


def test_stage_modules_import_no_heavy_library():
    code = (
        "import sys, longsift.generations, longsift.evalsets, longsift.templates, longsift.train, longsift.generate, "
        "longsift.cli.train, longsift.cli.generate; "
        "print([m for m in ('torch', 'transformers', 'trl', 'datasets', 'vllm') if m in sys.modules])"
    )
    repo = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo)
    assert out.stdout.strip() == "[]"
