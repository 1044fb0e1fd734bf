"""A real tiny-model run: the generate step answers MT-Bench, the mtbench step grades it through the local server,
and the report shows the producer's scores per turn (the contract of `longsift.layout.mtbench_scores`)."""

from __future__ import annotations

from pathlib import Path

import yaml
from test_report import Page

from longsift import layout
from longsift.llm.server import LocalChatServer, ServedRequest
from longsift.pipeline import load_recipe, run_recipe
from longsift.report import report

GRADES = {1: 7, 2: 4}  # the scripted judge's grade for a turn-1 and a turn-2 (multi-turn) prompt


def grade(request: ServedRequest) -> str:
    turn = 2 if "Conversation with User" in request.prompt else 1
    return f"Helpful enough.\nRating: [[{GRADES[turn]}]]"


def test_tiny_model_mtbench_scores_appear_per_turn_in_the_report(tiny_trained, data_dir: Path, tmp_path: Path):
    run_dir = tmp_path / "run"
    with LocalChatServer(grade) as server:
        stages = [
            {"name": "answers", "uses": "generate", "with": {"model": str(tiny_trained.output), "name": "tiny",
             "eval_set": "mtbench", "k": 3, "max_new_tokens": 6}},
            {"name": "mtbench", "uses": "mtbench", "with": {"answers": "${answers}",
             "llm": {"base_url": server.base_url, "model": "judge-m", "max_attempts": 1}}},
        ]  # fmt: skip
        recipe = tmp_path / "recipe.yaml"
        recipe.write_text(yaml.safe_dump({"name": "mt", "run_dir": str(run_dir), "data_dir": str(data_dir),
                                          "stages": stages}))  # fmt: skip
        run_recipe(load_recipe(recipe))
        assert len(server.log) == 6  # 3 questions x 2 turns
    scores = layout.read_mtbench(layout.mtbench_files(run_dir)[0])
    assert (scores["model"], scores["turn_1"], scores["turn_2"]) == ("tiny", 7.0, 4.0)
    written = report(run_dir, markdown=tmp_path / "report.md")
    row = next(r for r in Page(Path(written["html"]).read_text()).rows if r[:2] == ["tiny", "judge-m"])
    assert row[2:6] == ["7.00", "4.00", "5.50", "0"]  # turn 1, turn 2, overall, failed
    assert "| tiny | 7.00 | 4.00 | 5.50 |" in (tmp_path / "report.md").read_text()


def test_report_reads_mtbench_files_of_the_earlier_layout(tmp_path: Path) -> None:
    """Runs made before the schema was shared wrote `turn_scores` and plain category numbers."""
    path = tmp_path / "run" / "mtbench" / "old.json"
    layout.write_json({"model": "old", "judge": "gpt-4", "turn_scores": {"1": 6.0, "2": 5.0}, "overall": 5.5,
                       "categories": {"math": 3.0}, "n_failed": 1}, path)  # fmt: skip
    page = Page(Path(report(tmp_path / "run")["html"]).read_text())
    assert next(r for r in page.rows if r[0] == "old")[2:6] == ["6.00", "5.00", "5.50", "1"]
    assert next(r for r in page.rows if r[0] == "math")[1] == "3.00"
