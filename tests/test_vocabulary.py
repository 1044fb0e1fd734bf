"""One vocabulary (issue 12 item 4): the new spellings, and each old one still working with one warning line."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from longsift import formats
from longsift.formats.load import load


def deprecations(stderr: str) -> list[str]:
    return sorted(line for line in stderr.splitlines() if "deprecated" in line)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory, alpaca_pool: Path) -> Path:
    from itertools import islice

    path = tmp_path_factory.mktemp("vocabulary") / "small.jsonl"
    formats.write(list(islice(load(str(alpaca_pool)), 40)), path, "messages")
    return path


def test_convert_format_is_output_format(cli, small: Path, tmp_path: Path) -> None:
    new, old = tmp_path / "new.json", tmp_path / "old.json"
    done = cli("convert", str(small), "-o", str(new), "--output-format", "fastchat")
    assert deprecations(done.stderr) == []
    done = cli("convert", str(small), "-o", str(old), "--format", "fastchat")
    assert deprecations(done.stderr) == ["warning: --format is deprecated, use --output-format"]
    assert old.read_bytes() == new.read_bytes() and isinstance(json.loads(new.read_text())[0]["conversations"], list)


def test_stats_output_dir_is_output(cli, small: Path, tmp_path: Path) -> None:
    done = cli("stats", str(small), "-o", str(tmp_path / "new"))
    assert (tmp_path / "new" / "stats.json").is_file() and deprecations(done.stderr) == []
    done = cli("stats", str(small), "--output-dir", str(tmp_path / "old"))
    assert deprecations(done.stderr) == ["warning: --output-dir is deprecated, use -o"]
    assert orjson.loads((tmp_path / "old" / "stats.json").read_bytes())["rows_read"] == 40


def test_run_dir_is_output(cli, small: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "one.yaml"
    recipe.write_text(f"name: one\nstages:\n  - name: pick\n    uses: select\n"
                      f"    with: {{source: {small}, k: 5, format: alpaca}}\n")  # fmt: skip
    done = cli("run", str(recipe), "--run-dir", str(tmp_path / "old"))
    assert deprecations(done.stderr) == [
        "warning: --run-dir is deprecated, use -o",
        "warning: stage 'pick' (select): key 'format' is deprecated, use 'output_format'",
    ]
    assert len(json.loads((tmp_path / "old" / "select" / "pick.json").read_text())) == 5
    cli("run", str(recipe), "-o", str(tmp_path / "new"))
    assert (tmp_path / "new" / "select" / "pick.json").read_bytes() == (tmp_path / "old" / "select" /
                                                                       "pick.json").read_bytes()  # fmt: skip


def test_train_batch_and_subset_names(cli, tmp_path: Path) -> None:
    common = ["train", "x.json", "--recipe", "tiny-cpu", "-o", str(tmp_path / "never"), "--dry-run"]
    new = cli(*common, "--effective-batch-size", "8", "--per-device-batch-size", "4", "--k", "3")
    old = cli(*common, "--batch-size", "8", "--per-device-batch-size", "4", "--max-examples", "3")
    assert deprecations(new.stderr) == []
    assert deprecations(old.stderr) == ["warning: --batch-size is deprecated, use --effective-batch-size",
                                        "warning: --max-examples is deprecated, use --k"]  # fmt: skip
    config = json.loads(old.stdout)["longsift_config"]
    assert config == json.loads(new.stdout)["longsift_config"]
    assert (config["effective_batch_size"], config["k"]) == (8, 3)
    assert json.loads(old.stdout)["training_arguments"]["gradient_accumulation_steps"] == 2
    recipe = json.loads(cli(*common).stdout)["longsift_config"]  # flags not given leave the recipe's values
    assert recipe["effective_batch_size"] == 16 and recipe["k"] is None


def test_help_shows_one_vocabulary(cli) -> None:
    for command, shown, hidden in [
        ("select", ["--k", "--output-format", "--min-response-length", "--input-format"], ["--format", "--min-length"]),
        ("generate", ["--k", "--prompts-per-batch", "--model-name"], ["--limit", "--batch-size"]),
        ("train", ["--k", "--effective-batch-size", "--max-length", "--output"], ["--max-examples", "--batch-size"]),
        ("run", ["--output", "longsift recipes"], ["--run-dir", "--list"]),
        ("stats", ["--output"], ["--output-dir"]),
    ]:  # fmt: skip
        text = cli(command, "--help", env={"COLUMNS": "200"}).stdout
        assert all(flag in text for flag in shown), (command, text)
        assert not any(f"{flag} " in text or f"{flag}\n" in text for flag in hidden), (command, text)
