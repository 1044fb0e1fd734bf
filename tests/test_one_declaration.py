"""One declaration per stage (issue 12): every CLI command and every recipe step agrees with its options model.

For each command of `longsift` (groups included): every visible option is a field of one of the models its flags
were declared from (`longsift.options.cli_option` / `command_options`), with that field's flag names, default and
help; every cli field of those models has its flag; every hidden option is a deprecated spelling of a field.
For each recipe step: it has a model, the model rejects unknown keys, and its step-only keys are declared.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from pydantic import BaseModel

from longsift import options as opts
from longsift.cli import build


def typer_commands(app: typer.Typer, prefix: str = "") -> Iterator[tuple[str, typer.models.CommandInfo]]:
    for info in app.registered_commands:
        assert info.callback is not None
        name = info.name or typer.main.get_command_name(info.callback.__name__)
        yield f"{prefix}{name}", info
    for group in app.registered_groups:
        if group.typer_instance is not None:
            yield from typer_commands(group.typer_instance, f"{prefix}{group.name} ")


def click_command(root: Any, path: str) -> Any:
    command = root
    for part in path.split():
        command = command.commands[part]
    return command


@pytest.fixture(scope="module")
def commands() -> dict[str, tuple[Any, tuple[type[BaseModel], ...]]]:
    app = build()
    root = typer.main.get_command(app)
    return {path: (click_command(root, path), getattr(info.callback, opts.MODELS, ())) for path, info in
            typer_commands(app)}  # fmt: skip


def field_of(option: Any, models: tuple[type[BaseModel], ...]) -> tuple[type[BaseModel], str] | None:
    names = set(option.opts) | set(option.secondary_opts)
    for model in models:
        for name in opts.cli_fields(model):
            if names & set(opts.declared_flags(model, name)):
                return model, name
    return None


def deprecated_of(option: Any, models: tuple[type[BaseModel], ...]) -> str | None:
    for model in models:
        for name in opts.cli_fields(model):
            if set(option.opts) & set(opts.deprecated_flags(model, name)):
                return name
    return None


def test_every_command_matches_its_models(
    commands: dict[str, tuple[Any, tuple[type[BaseModel], ...]]],
) -> None:
    problems: list[str] = []
    for path, (command, models) in sorted(commands.items()):
        if hasattr(command, "commands"):
            continue
        seen: set[tuple[type[BaseModel], str]] = set()
        for param in command.params:
            if param.param_type_name != "option" or param.name == "help":
                continue
            if param.hidden:
                if deprecated_of(param, models) is None:
                    problems.append(f"{path}: hidden {param.opts} is no field's deprecated spelling")
                continue
            found = field_of(param, models)
            if found is None:
                problems.append(f"{path}: {param.opts} belongs to no field of {[m.__name__ for m in models]}")
                continue
            model, name = found
            seen.add(found)
            info = model.model_fields[name]
            flags = set(opts.declared_flags(model, name))
            if set(param.opts) | set(param.secondary_opts) != flags:
                problems.append(f"{path}: {param.opts + param.secondary_opts} != {model.__name__}.{name} {flags}")
            if (param.help or None) != (info.description or None):
                problems.append(f"{path}: help of {param.opts[0]} {param.help!r} != {info.description!r}")
            default = None if info.is_required() else opts.default_of(info)
            cli_default = param.default if not param.required else None
            if isinstance(cli_default, tuple):
                cli_default = list(cli_default)
            if cli_default != default and not (default is None and cli_default in ((), [])):
                problems.append(f"{path}: default of {param.opts[0]} {cli_default!r} != {default!r}")
        for model in models:
            missing = [n for n in opts.cli_fields(model) if (model, n) not in seen]
            if missing and getattr(model, "cli_partial", False) is False:
                problems.append(f"{path}: {model.__name__} fields without a flag: {missing}")
    assert not problems, "\n".join(problems)


def test_every_step_has_a_model() -> None:
    from longsift.pipeline import steps
    from longsift.pipeline.runner import STEPS

    problems: list[str] = []
    for uses in STEPS:
        if not STEPS.get(uses).__module__.startswith("longsift."):
            continue  # a step a test registered
        model = steps.step_model(uses)
        if model is None:
            problems.append(f"step {uses!r} has no options model")
            continue
        found = steps.check_stage(uses, "s", {"surely_not_an_option": 1}, Path("/nonexistent-run"))
        if not any("surely_not_an_option" in p for p in found):
            problems.append(f"step {uses!r} accepts an unknown key")
    assert not problems, "\n".join(problems)


def test_version() -> None:
    import longsift

    done = subprocess.run([sys.executable, "-m", "longsift", "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == f"longsift {longsift.__version__}"


def test_analyze_default_tolerance_is_the_analysis_one() -> None:
    import importlib

    from longsift.analyze.options import DEFAULT_TOLERANCE

    assert DEFAULT_TOLERANCE == importlib.import_module("longsift.analyze.length_bias").DEFAULT_TOLERANCE


@pytest.mark.parametrize(
    ("uses", "old", "new"),
    [("generate", {"limit": 3, "batch_size": 2}, {"k": 3, "prompts_per_batch": 2}),
     ("select", {"min_length": 5, "max_length": 9, "format": "alpaca"},
      {"min_response_length": 5, "max_response_length": 9, "output_format": "alpaca"}),
     ("tiny-model", {"texts_from": "x.json", "limit": 10}, {"data": "x.json", "k": 10}),
     ("analyze", {"unit": "words"}, {"by": "words"})],
)  # fmt: skip
def test_old_recipe_keys_warn_and_are_used(uses: str, old: dict, new: dict, capsys: pytest.CaptureFixture) -> None:
    from longsift.pipeline import steps

    required = {"generate": {"model": "m"}, "select": {"source": "s.json"}}.get(uses, {})
    model = steps.step_model(uses)
    assert model is not None
    where = f"stage 's' ({uses})"
    chosen = model.from_recipe({**required, **old}, where)
    assert {key: getattr(chosen, key) for key in new} == new
    warnings = capsys.readouterr().err.splitlines()
    assert warnings == [f"warning: {where}: key {o!r} is deprecated, use {n!r}" for o, n in zip(old, new, strict=True)]
    assert steps.check_stage(uses, "s", {**required, **new}, Path("/nonexistent-run")) == []
    both = steps.check_stage(uses, "s", {**required, **old, **new}, Path("/nonexistent-run"))
    assert both and "deprecated name of" in both[0]


def test_step_defaults_are_the_models() -> None:
    """The select step and `select` share one default unit (the step once said words, the CLI chars)."""
    from longsift.pipeline import steps
    from longsift.select.options import SelectOptions

    step = steps.SelectStep.from_recipe({"source": "s.json"})
    assert step.unit() == SelectOptions().unit() == "chars"
    assert steps.GenerateStep.from_recipe({"model": "m"}).prompts_per_batch == 16
