"""The recipe runner's bookkeeping, with a small step registered like a real one."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from longsift.errors import ConfigError
from longsift.pipeline import load_recipe, run_recipe
from longsift.pipeline.runner import STEPS, StageContext


def write_text_step(context: StageContext) -> dict[str, str]:
    """Writes its `text` (plus its input file's text) and counts how often it ran."""
    context.check_options({"text", "input"})
    out = context.run_dir / f"{context.spec.name}.txt"
    prefix = Path(context.options["input"]).read_text() if "input" in context.options else ""
    out.write_text(prefix + context.require("text"))
    counter = context.run_dir / f"{context.spec.name}.runs"
    counter.write_text(str(int(counter.read_text()) + 1 if counter.exists() else 1))
    return {"output": str(out)}


STEPS.register("write-text", write_text_step)


def recipe_file(tmp_path: Path, first_text: str = "a") -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "toy",
                "run_dir": str(tmp_path / "run"),
                "stages": [
                    {"name": "first", "uses": "write-text", "with": {"text": first_text}},
                    {"name": "second", "uses": "write-text", "with": {"text": "b", "input": "${first}"}},
                ],
            }
        )
    )
    return path


def runs(tmp_path: Path, stage: str) -> int:
    return int((tmp_path / "run" / f"{stage}.runs").read_text())


def test_rerun_skips_done_stages_and_reruns_what_changed(tmp_path: Path) -> None:
    result = run_recipe(load_recipe(recipe_file(tmp_path)))
    assert result.ran == ["first", "second"]
    assert (tmp_path / "run" / "second.txt").read_text() == "ab"
    again = run_recipe(load_recipe(recipe_file(tmp_path)))
    assert again.skipped == ["first", "second"] and runs(tmp_path, "first") == 1
    changed = run_recipe(load_recipe(recipe_file(tmp_path, first_text="z")))
    assert changed.ran == ["first", "second"]  # second's input file changed, so it reruns too
    assert (tmp_path / "run" / "second.txt").read_text() == "zb"
    forced = run_recipe(load_recipe(recipe_file(tmp_path, first_text="z")), force=["second"])
    assert forced.skipped == ["first"] and forced.ran == ["second"]


def test_a_stage_that_died_has_no_manifest_and_runs_again(tmp_path: Path) -> None:
    run_recipe(load_recipe(recipe_file(tmp_path)))
    (tmp_path / "run" / ".stages" / "second" / "manifest.json").unlink()  # as if killed before it finished
    result = run_recipe(load_recipe(recipe_file(tmp_path)))
    assert result.skipped == ["first"] and result.ran == ["second"]


def test_overrides_unknown_keys_and_references_are_checked(tmp_path: Path) -> None:
    recipe = load_recipe(recipe_file(tmp_path), ["stages.first.with.text=q", "seed=7"])
    assert recipe.stage("first").options["text"] == "q" and recipe.seed == 7
    with pytest.raises(ConfigError, match="extra_forbidden|Extra inputs"):
        load_recipe(recipe_file(tmp_path), ["epochs=3"])
    with pytest.raises(ConfigError, match="no stage named"):
        load_recipe(recipe_file(tmp_path), ["stages.nope.with.text=q"])
    bad = tmp_path / "bad.yaml"

    def one_stage(options: dict[str, str]) -> Path:
        stage = {"name": "s", "uses": "write-text", "with": options}
        bad.write_text(yaml.safe_dump({"name": "x", "run_dir": str(tmp_path / "r"), "stages": [stage]}))
        return bad

    with pytest.raises(ConfigError, match="unknown reference"):
        run_recipe(load_recipe(one_stage({"text": "${missing}"})))
    with pytest.raises(ConfigError, match="unknown options"):
        run_recipe(load_recipe(one_stage({"txt": "a"})))


def test_every_shipped_recipe_loads_and_names_only_known_stage_options() -> None:
    from longsift.pipeline.recipe import RECIPES_DIR
    from longsift.pipeline.steps import LLM_KEYS, OPTIONS

    shipped = sorted(RECIPES_DIR.glob("*.yaml"))
    assert {p.stem for p in shipped} >= {"tiny-cpu", "alpaca-longest-1k", "alpagasus-1k", "lima-1k", "alpaca-52k",
                                         "refined", "evol-longest-1k", "paper-study"}  # fmt: skip
    for path in shipped:
        recipe = load_recipe(path)
        for stage in recipe.stages:
            assert stage.uses in OPTIONS, (path.name, stage.name)
            STEPS.get(stage.uses)
            assert set(stage.options) <= OPTIONS[stage.uses], (path.name, stage.name, stage.options)
            assert set(stage.options.get("llm", {})) <= LLM_KEYS, (path.name, stage.name)
