"""The options mechanism: flags from a model, hidden deprecated aliases (one warning, value used), overrides."""

from __future__ import annotations

from typing import Any, Literal

import pytest
import typer
from typer.testing import CliRunner

from longsift.errors import ConfigError
from longsift.options import Options, apply_overrides, cli_option, command_options, merge, option, with_aliases


class Demo(Options):
    k: int | None = option(None, "How many.", flags=("--k", "-k"), deprecated=("--limit", "--max-examples"))
    unit: Literal["chars", "words"] = option("chars", "Length unit.")
    dedup: bool = option(False, "Drop duplicates.", deprecated=("--unique",))
    workers: int | None = option(None, "Processes.", recipe=False)


def invoke(command: Any, *args: str) -> Any:
    app = typer.Typer()
    app.command()(with_aliases(command))
    app.command("other")(lambda: None)  # two commands: the command's name is part of argv
    return CliRunner().invoke(app, [command.__name__, *args])


def generated(*, options: Demo) -> None:
    print(options.model_dump_json())


def test_generated_flags_and_defaults() -> None:
    done = invoke(command_options(Demo)(generated), "--k", "3", "--unit", "words", "--dedup")
    assert done.exit_code == 0, done.output
    assert '"k":3' in done.output and '"unit":"words"' in done.output and '"dedup":true' in done.output
    done = invoke(command_options(Demo)(generated))
    assert '"k":null' in done.output and '"unit":"chars"' in done.output
    assert invoke(command_options(Demo)(generated), "--unit", "bytes").exit_code == 2  # Literal -> a choice


@pytest.mark.parametrize("old", ["--limit", "--max-examples"])
def test_deprecated_alias_warns_once_and_is_used(old: str) -> None:
    done = invoke(command_options(Demo)(generated), old, "7")
    assert done.exit_code == 0, done.output
    assert '"k":7' in done.stdout
    assert done.stderr.count("deprecated") == 1
    assert f"warning: {old} is deprecated, use --k" in done.stderr


def test_new_spelling_wins_and_bool_alias() -> None:
    done = invoke(command_options(Demo)(generated), "--limit", "7", "--k", "2", "--unique")
    assert '"k":2' in done.stdout and '"dedup":true' in done.stdout
    assert "--unique is deprecated, use --dedup" in done.stderr


def test_aliases_are_hidden() -> None:
    done = invoke(command_options(Demo)(generated), "--help")
    assert "--k" in done.output and "--limit" not in done.output and "--unique" not in done.output


def test_partial_passes_only_given_flags() -> None:
    def given(*, options: dict[str, Any]) -> None:
        print(sorted(options.items()))

    given.__name__ = "given"
    done = invoke(command_options(Demo, partial=True)(given), "--unit", "chars", "--limit", "4")
    assert done.stdout.strip() == "[('k', 4), ('unit', 'chars')]"  # given even when equal to the default


def test_single_cli_option() -> None:
    def single(k: int | None = cli_option(Demo, "k")) -> None:
        print(f"k={k}")

    done = invoke(single, "--max-examples", "5")
    assert done.stdout.strip() == "k=5" and "--max-examples is deprecated, use --k" in done.stderr


def test_recipe_keys() -> None:
    assert Demo.from_recipe({"limit": 3}, "stage 'x'").k == 3
    with pytest.raises(ConfigError, match="unknown options"):
        Demo.from_recipe({"nope": 1}, "stage 'x'")
    with pytest.raises(ConfigError, match="give only 'k'"):
        Demo.from_recipe({"limit": 3, "k": 2}, "stage 'x'")
    with pytest.raises(ConfigError, match="stage 'x': unit"):
        Demo.from_recipe({"unit": "bytes"}, "stage 'x'")


def test_recipe_key_warning(capsys: pytest.CaptureFixture[str]) -> None:
    Demo.from_recipe({"max_examples": 3}, "stage 'x'")
    assert capsys.readouterr().err.strip() == "warning: stage 'x': key 'max_examples' is deprecated, use 'k'"


def test_overrides() -> None:
    data: dict[str, Any] = {"stages": [{"name": "train", "with": {"epochs": 3}}], "seed": 0}
    apply_overrides(data, ["stages.train.with.epochs=2", "stages.train.with.lora.r=8", "seed=1", "x.y=[1, 2]"])
    assert data == {"stages": [{"name": "train", "with": {"epochs": 2, "lora": {"r": 8}}}], "seed": 1,
                    "x": {"y": [1, 2]}}  # fmt: skip
    for bad, message in [("epochs", "KEY=VALUE"), ("stages.nope.with.k=1", "no stage named 'nope'"),
                         ("seed.x=1", "seed is not a mapping"), ("a=[", "invalid YAML")]:  # fmt: skip
        with pytest.raises(ConfigError, match=message):
            apply_overrides({"stages": [], "seed": 0}, [bad])
    assert merge({"a": {"b": 1, "c": 2}, "d": 1}, {"a": {"b": 3}, "d": None}) == {"a": {"b": 3, "c": 2}, "d": None}
