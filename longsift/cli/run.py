"""`longsift run RECIPE`: a whole study from a YAML recipe, resumable."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from longsift.options import command_options
from longsift.pipeline.recipe import RunOptions

console = Console(stderr=True)


@command_options(RunOptions)
def run(
    recipe: str = typer.Argument(..., help="A recipe file, or the name of a shipped recipe (see `longsift recipes`)."),
    *,
    options: RunOptions,
) -> None:
    """Run a recipe (a file, or a shipped recipe by name: `longsift recipes` lists them) stage by stage; finished
    stages are skipped, a stage that died runs again."""
    from longsift.pipeline import load_recipe, run_recipe

    output = options.output
    overrides = [*options.overrides, *([f"run_dir={output}"] if output else [])]
    result = run_recipe(load_recipe(recipe, overrides), force=options.force, until=options.until, console=console)
    console.print(
        f"done: ran {len(result.ran)} stage(s) {result.ran}, skipped {len(result.skipped)} {result.skipped}; "
        f"artifacts in {result.run_dir}"
    )
    from longsift.report import print_headline

    print_headline(result.run_dir, Console(width=None if sys.stdout.isatty() else 160))  # the headline, on stdout


def recipes() -> None:
    """List the shipped recipes."""
    from longsift.pipeline.recipe import RECIPES_DIR

    for path in sorted(RECIPES_DIR.glob("*.yaml")):
        print(path.stem)


def register(app: typer.Typer) -> None:
    app.command()(run)
    app.command()(recipes)
