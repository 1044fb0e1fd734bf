"""Empty is an error (issue 13): a command whose output would hold zero records exits 2 with one `error:` line
that says why and what to do, and writes nothing; `--allow-empty` (one declaration) accepts the empty output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from longsift.generations import Generation
from longsift.llm.server import LocalChatServer
from tests.conftest import run_cli


def refused(tmp: Path, *args: str, reason: str) -> str:
    """Run a command that must refuse an empty output: exit 2, one error line naming `reason`, no new file."""
    before = sorted(p.name for p in tmp.rglob("*"))
    done = run_cli(*args, check=False)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2, done.stderr
    assert len(errors) == 1 and reason in errors[0] and "--allow-empty" in errors[0], done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp.rglob("*")) == before, "an empty output wrote files"
    return errors[0]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture
def pool(tmp_path: Path) -> Path:
    rows = [{"instruction": f"q{i}", "output": "answer " * (i + 1)} for i in range(4)]
    return write_jsonl(tmp_path / "pool.jsonl", rows)


def test_select_by_score_without_scores_and_above_every_score(tmp_path: Path, pool: Path) -> None:
    out = tmp_path / "sel.json"
    line = refused(tmp_path, "select", str(pool), "-o", str(out), "--method", "llm-score", "--k", "2",
                   reason="none of the 4 records has a score")  # fmt: skip
    assert "longsift score" in line
    scored = write_jsonl(tmp_path / "scored.jsonl", [{"instruction": "q", "output": "a", "score": 3.0}])
    line = refused(tmp_path, "select", str(scored), "-o", str(out), "--method", "llm-score", "--threshold", "4.5",
                   reason="at or above the threshold")  # fmt: skip
    assert "lower --threshold" in line
    refused(tmp_path, "select", str(pool), "-o", str(out), "--min-response-length", "10000",
            reason="passes the length filter")  # fmt: skip
    run_cli("select", str(pool), "-o", str(out), "--method", "llm-score", "--k", "2", "--allow-empty")
    assert json.loads(out.read_text()) == []


def test_convert_of_rows_that_all_fail_the_schema(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "out.jsonl"
    prompts_only = data_dir / "test" / "vicuna_test_set.jsonl"
    line = refused(tmp_path, "convert", str(prompts_only), "-o", str(out), reason="every one of the 80 rows")
    assert "eval set" in line
    hostile = write_jsonl(tmp_path / "bad.jsonl", [{"instruction": "q"}, {"output": 3}, {"x": 1}])
    refused(tmp_path, "convert", str(hostile), "-o", str(out), reason="failed the schema")
    run_cli("convert", str(hostile), "-o", str(out), "--allow-empty")
    assert out.read_text() == ""


def test_stats_of_a_corpus_without_usable_rows(tmp_path: Path) -> None:
    hostile = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "q"}, {"prompt": "r"}])
    refused(tmp_path, "stats", str(hostile), "-o", str(tmp_path / "stats"), reason="failed the schema")


def test_alpacaeval_export_of_other_eval_sets(tmp_path: Path) -> None:
    pairwise = tmp_path / "pairwise.jsonl"
    pairwise.write_text(json.dumps(Generation("vicuna-1", "vicuna", "m", ("hi",), ("hello",)).to_dict()) + "\n")
    line = refused(tmp_path, "alpacaeval", "export", str(pairwise), "-o", str(tmp_path / "mo.json"),
                   reason="none of eval set 'alpacaeval'")  # fmt: skip
    assert "vicuna" in line and "longsift generate MODEL alpacaeval" in line
    run_cli("alpacaeval", "export", str(pairwise), "-o", str(tmp_path / "mo.json"), "--allow-empty")
    assert json.loads((tmp_path / "mo.json").read_text()) == []


def test_generate_refuses_before_loading_the_model(tmp_path: Path) -> None:
    model = tmp_path / "model"  # never loaded: the check comes first
    model.mkdir()
    out = str(tmp_path / "gen.jsonl")
    line = refused(tmp_path, "generate", str(model), "vicuna", "-o", out, "--alpacaeval", str(tmp_path / "mo.json"),
                   reason="has no alpacaeval prompts")  # fmt: skip
    assert "vicuna,alpacaeval" in line
    refused(tmp_path, "generate", str(model), "koala", "-o", out, "--mtbench", str(tmp_path / "mt.jsonl"),
            reason="has no mtbench prompts")  # fmt: skip
    refused(tmp_path, "generate", str(model), "vicuna", "-o", out, "--k", "0", reason="holds no prompts")


def test_llm_commands(tmp_path: Path, pool: Path) -> None:
    from longsift.llm.cache import Cache

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("\n")
    with LocalChatServer(lambda request: "[Better Answer] x [End]") as server:
        llm = ["--base-url", server.base_url, "--model", server.model, "--cache", str(tmp_path / "c.sqlite")]
        refused(tmp_path, "llm", "run", str(prompts), "-o", str(tmp_path / "answers.jsonl"), *llm,
                reason="holds no prompts")  # fmt: skip
        bad = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "q"}])
        for stage in ("refine", "score"):
            refused(tmp_path, stage, str(bad), "-o", str(tmp_path / f"{stage}.jsonl"), *llm,
                    reason="failed the schema")  # fmt: skip
        cache = tmp_path / "c.sqlite"
        Cache(cache).close()
    refused(tmp_path, "llm", "cache", "export", "--cache", str(cache), "-o", str(tmp_path / "calls.jsonl"),
            reason="holds no calls")  # fmt: skip
    run_cli("llm", "cache", "export", "--cache", str(cache), "-o", str(tmp_path / "calls.jsonl"), "--allow-empty")
    assert (tmp_path / "calls.jsonl").read_text() == ""


def test_analyze_of_judgment_files_without_judgments(tmp_path: Path) -> None:
    (tmp_path / "judgments.jsonl").write_text("")
    refused(tmp_path, "analyze", str(tmp_path / "judgments.jsonl"), "-o", str(tmp_path / "analysis.json"),
            reason="no judgments and no selection")  # fmt: skip


def test_a_recipe_stage_that_selects_nothing_stops_the_run(tmp_path: Path, pool: Path) -> None:
    recipe = tmp_path / "r.yaml"
    stage = "  - name: {}\n    uses: select\n    with: {{source: {}, k: 2, min_response_length: 99999{}}}\n"
    recipe.write_text(f"name: r\nrun_dir: {tmp_path / 'run'}\nstages:\n" + stage.format("pick", pool, "")
                      + stage.format("pick-any", pool, ", allow_empty: true"))  # fmt: skip
    done = run_cli("run", str(recipe), check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "stage 'pick' (select): nothing to write" in done.stderr and "length filter" in done.stderr
    assert not list((tmp_path / "run").glob("select/pick*.json"))
    done = run_cli("run", str(recipe), "--set", "stages.pick.with.allow_empty=true")
    assert json.loads((tmp_path / "run" / "select" / "pick-any.json").read_text()) == []
