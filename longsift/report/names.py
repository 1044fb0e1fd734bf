"""How the report names a model it only knows by a path, and whether a run's models are demo models.

A judge or refiner given as a local folder is named by what the folder says about itself (its `config.json`),
never by the filesystem path; a run is a demo when its stage manifests show tiny models (the `tiny-model`
stage, `train --tiny`) or its LLMs are such folders.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from longsift.manifest import read_manifest

STATE_DIR = ".stages"  # the runner's stage manifests (longsift.pipeline.runner.STATE_DIR)
TINY_HIDDEN_SIZE = 512  # a local model this narrow is a test or demo model, not one whose verdicts mean much


def _config(folder: Path) -> dict[str, Any] | None:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) else None


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or "\\" in name or Path(name).is_dir()


def model_label(name: str) -> str:
    """`gpt-4` stays `gpt-4`; `/runs/x/models/local-llm` becomes `local-llm (local llama, 2 layers, hidden 64)`."""
    if not name or not _looks_like_path(name):
        return name
    folder = Path(name).expanduser()
    config = _config(folder) if folder.is_dir() else None
    if config is None:
        return folder.name or name
    own = config.get("_name_or_path")
    if isinstance(own, str) and own and not _looks_like_path(own):
        return f"{own} (local copy)"
    facts = [f"local {config.get('model_type') or 'model'}"]
    if config.get("num_hidden_layers"):
        facts.append(f"{config['num_hidden_layers']} layers")
    if config.get("hidden_size"):
        facts.append(f"hidden {config['hidden_size']}")
    return f"{folder.name} ({', '.join(facts)})"


def judge_label(key: str) -> str:
    """`gpt-4/paper` (judge/template, as judgments and the analysis name judges) -> `gpt-4 · paper template`."""
    model, _, template = key.rpartition("/")
    return f"{model_label(model)} · {template} template" if model else model_label(key)


def is_tiny_folder(name: str) -> bool:
    if not name or not _looks_like_path(name):
        return False
    config = _config(Path(name).expanduser())
    return config is not None and int(config.get("hidden_size") or 0) <= TINY_HIDDEN_SIZE


def stage_manifests(run_dir: Path) -> dict[str, Any]:
    """Stage name -> its manifest (`longsift.manifest.Manifest`), in the order the stages started."""
    found = []
    for folder in sorted((Path(run_dir) / STATE_DIR).glob("*/")):
        record = read_manifest(folder / "manifest.json")
        if record is not None:
            found.append((_started(folder, record), folder.name, record))
    return {name: record for _, name, record in sorted(found, key=lambda item: (item[0], item[1]))}


def _started(folder: Path, record: Any) -> float:
    try:
        return float((folder / "started").read_text())
    except (OSError, ValueError):
        return 0.0


def demo_models(run_dir: Path, llm_names: list[str]) -> list[str]:
    """What makes this run a demo, in words (empty: nothing does)."""
    reasons = []
    for name, record in stage_manifests(run_dir).items():
        if record.command == "tiny-model":
            reasons.append(f"stage {name!r} builds a tiny random model")
        elif record.command == "train" and record.options.get("tiny"):
            reasons.append(f"stage {name!r} trains a tiny model")
    for name in sorted(set(llm_names)):
        if is_tiny_folder(name):
            reasons.append(f"the LLM {model_label(name)} is a tiny local model")
    return reasons
