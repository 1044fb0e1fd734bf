"""Offline-friendly recipes (issue 13): every shipped recipe runs from local files as well as Hub ids; offline, a
Hub id stops its stage at once with one line naming the recipe key to set; `--set` is documented."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from longsift import hub
from longsift.pipeline import load_recipe
from longsift.pipeline.recipe import RECIPES_DIR
from tests.conftest import run_cli

REPO = Path(__file__).resolve().parents[1]


def hub_keys(recipe: str, overrides: list[str] | None = None) -> dict[str, str]:
    loaded = load_recipe(recipe, overrides or [])
    return {f"stages.{s.name}.with.{k}": v for s in loaded.stages for k, v in s.options.items()
            if hub.looks_like_hub_id(v)}  # fmt: skip


def documented_keys() -> dict[str, dict[str, str]]:
    """recipes/README.md's table: recipe -> {key: hub id}."""
    table: dict[str, dict[str, str]] = {}
    recipe = ""
    for line in (REPO / "recipes" / "README.md").read_text().splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[1].startswith("stages."):
            continue
        recipe = cells[0] or recipe
        table.setdefault(recipe, {})[cells[1]] = cells[2]
    return table


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """HF_HUB_OFFLINE with an empty Hugging Face cache (the user's cache must not make a test pass)."""
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "HF_HUB_CACHE": str(tmp_path / "hf" / "hub"),
           "HF_DATASETS_CACHE": str(tmp_path / "hf" / "datasets")}  # fmt: skip
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def test_the_readme_lists_every_hub_key_of_every_recipe() -> None:
    shipped = {p.stem: hub_keys(str(p)) for p in sorted(RECIPES_DIR.glob("*.yaml"))}
    with_hub_ids = {name: keys for name, keys in shipped.items() if keys}
    assert with_hub_ids and documented_keys() == with_hub_ids


@pytest.mark.parametrize("recipe", sorted(p.stem for p in RECIPES_DIR.glob("*.yaml")))
def test_every_recipe_takes_local_files_for_its_hub_ids(recipe: str, tmp_path: Path, offline: dict) -> None:
    local = tmp_path / "local.json"
    local.write_text("[]")
    keys = hub_keys(recipe)
    overridden = load_recipe(recipe, [f"{key}={local}" for key in keys])
    for stage in overridden.stages:
        hub.check_stage(stage.name, stage.options)  # offline: nothing left that needs the Hub
    for key in keys:
        stage = key.split(".")[1]
        options = next(s.options for s in load_recipe(recipe).stages if s.name == stage)
        with pytest.raises(hub.ConfigError, match=re.escape(f"--set {key}=PATH")):
            hub.check_stage(stage, options)


def test_offline_run_fails_fast_naming_the_key(tmp_path: Path, offline: dict) -> None:
    done = run_cli("run", "alpaca-longest-1k", "-o", str(tmp_path / "run"), check=False, timeout=60)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2 and len(errors) == 1, done.stderr
    assert "HF_HUB_OFFLINE" in errors[0] and "--set stages.select.with.source=PATH" in errors[0]
    assert "Traceback" not in done.stderr and "Retrying" not in done.stderr


def test_offline_run_from_a_local_file(tmp_path: Path, offline: dict, alpaca_pool: Path) -> None:
    run = tmp_path / "run"
    sets = [f"stages.select.with.source={alpaca_pool}", "stages.select.with.k=5", "stages.select.with.by=chars"]
    run_cli("run", "alpaca-longest-1k", "-o", str(run), "--until", "select", *(f"--set={s}" for s in sets))
    selected = json.loads((run / "select" / "alpaca-longest-1k.json").read_text())
    assert len(selected) == 5


def test_a_command_given_a_hub_id_offline(tmp_path: Path, offline: dict) -> None:
    done = run_cli("select", "tatsu-lab/alpaca", "-o", str(tmp_path / "x.json"), "--k", "3", check=False)
    assert done.returncode == 2 and "pass a local file or folder" in done.stderr
    assert not (tmp_path / "x.json").exists()


def test_set_is_documented_in_run_help() -> None:
    text = " ".join(run_cli("run", "--help", env={"COLUMNS": "200"}).stdout.split())
    assert "--set stages.NAME.with.KEY=VALUE" in text and "stages.select.with.source=" in text
    assert "stages.NAME.with.KEY=VALUE" in (REPO / "recipes" / "README.md").read_text()
