"""The `longsift` command line: one command per public function, same names and options.

Each stage's commands live in their own module with a `register(app)` function; adding a stage is
one module plus one line in COMMAND_MODULES. Command modules import heavy libraries inside commands.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="longsift",
    help="Long Is More for Alignment, as a toolkit: select, refine, train, generate, judge, report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def root() -> None:
    """Long Is More for Alignment, as a toolkit."""


COMMAND_MODULES = [
    "longsift.cli.data",
    "longsift.cli.env",
    "longsift.cli.llm",
    "longsift.cli.refine",
]


def build() -> typer.Typer:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)
    return app


def main() -> None:
    from longsift.cli.errors import run_app

    run_app(build())
