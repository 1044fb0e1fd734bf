"""The `longsift` command line: one command per public function, same names and options.

Each stage's commands live in their own module of this package with a `register(app)` function, found
automatically. Command modules import heavy libraries inside the commands, so `--help` stays fast.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
import warnings

import typer

app = typer.Typer(
    name="longsift",
    help="Long Is More for Alignment, as a toolkit: select, refine, train, generate, judge, report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        import longsift

        print(f"longsift {longsift.__version__}")
        raise typer.Exit()


# What Hugging Face's libraries read to stay quiet: their progress bars and advisory warnings clutter every log.
QUIET_ENV = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error",
    "DATASETS_VERBOSITY": "error", "HF_HUB_VERBOSITY": "error", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}  # fmt: skip
QUIET_MODULES = r"(transformers|datasets|huggingface_hub|tokenizers|trl|peft|accelerate|torch)(\.|$)"


def quiet_third_party(verbose: bool) -> None:
    """The one place third-party progress bars and warnings are silenced, unless `--verbose` (or
    LONGSIFT_VERBOSE=1). Environment variables the user set win; child processes (accelerate, torchrun) inherit
    these. longsift's own progress and warnings are not touched."""
    if verbose or os.environ.get("LONGSIFT_VERBOSE") == "1":
        return
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    warnings.filterwarnings("ignore", module=QUIET_MODULES)
    import logging

    for name in ("transformers", "datasets", "huggingface_hub", "accelerate", "trl", "peft"):
        logging.getLogger(name).setLevel(logging.ERROR)


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", help="Print the version and exit.", callback=_print_version, is_eager=True
    ),
    verbose: bool = typer.Option(
        False, "--verbose", help="Show Hugging Face's own progress bars and warnings (hidden by default)."
    ),
) -> None:
    """Long Is More for Alignment, as a toolkit."""
    quiet_third_party(verbose)


# Help lists commands in the order data flows; a module not named here is found and listed after these.
STAGE_ORDER = ["data", "env", "llm", "refine", "train", "generate", "judge", "alpacaeval", "openllm", "analyze",
               "report", "run"]  # fmt: skip


def command_modules() -> list[str]:
    """Every module of this package with a `register(app)` function: a new stage needs no edit here."""
    found = [m.name for m in pkgutil.iter_modules(__path__) if m.name not in ("errors",)]
    ordered = sorted(found, key=lambda name: (STAGE_ORDER.index(name) if name in STAGE_ORDER else 99, name))
    return [f"{__name__}.{name}" for name in ordered]


def build(command: str | None = None) -> typer.Typer:
    """Register the commands of every module; with `command`, stop at the first module that defines it.

    Stopping early keeps `longsift select ...` from importing every other stage (numpy, pydantic, ...):
    start-up time counts in every run. Help and unknown commands still see every module.
    """
    for name in command_modules():
        module = importlib.import_module(name)
        if hasattr(module, "register"):
            module.register(app)
            deprecated_aliases(app)
        if command is not None and command in registered_commands():
            break
    return app


def deprecated_aliases(typer_app: typer.Typer) -> None:
    """Every command (groups included) accepts the hidden old spellings of its `cli_option` flags."""
    from longsift.options import with_aliases

    for command in typer_app.registered_commands:
        if command.callback is not None:
            command.callback = with_aliases(command.callback)
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            deprecated_aliases(group.typer_instance)


def registered_commands() -> set[str]:
    """Names of the commands and command groups registered so far (Typer's naming: lower case, dashes)."""
    names = {group.name for group in app.registered_groups if group.name}
    for command in app.registered_commands:
        if command.name:
            names.add(command.name)
        elif command.callback is not None:
            names.add(typer.main.get_command_name(command.callback.__name__))
    return names


def main() -> None:
    import gc

    from longsift.cli.errors import run_app

    wanted = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else None
    app = build(wanted)
    gc.freeze()  # what start-up built lives until exit: the collector need not walk it again (~25 ms a run)
    run_app(app)
