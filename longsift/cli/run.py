"""`longsift run RECIPE`: a whole study from a YAML recipe, resumable."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from longsift.options import command_options
from longsift.pipeline.recipe import RunOptions

console = Console(stderr=True)
RUN_HELP = (
    "Run a recipe (a file, or a shipped recipe by name: `longsift recipes` lists them) stage by stage; finished "
    "stages are skipped, a stage that died runs again.\n\n"
    "Any recipe key can be changed without editing the file: --set stages.NAME.with.KEY=VALUE (a YAML value; "
    "repeatable), e.g. --set stages.train.with.epochs=2.\n\n"
    "Offline, or without Hub access, point Hub ids at local files: --set stages.select.with.source=alpaca_data.json "
    "--set stages.train.with.model=/models/Llama-2-7b-hf (recipes/README.md lists each shipped recipe's keys). A Hub "
    "id that cannot be reached (HF_HUB_OFFLINE=1, no network) stops its stage at once, naming the key to set."
)


@command_options(RunOptions)
def run(
    recipe: str = typer.Argument(..., help="A recipe file, or the name of a shipped recipe (see `longsift recipes`)."),
    *,
    options: RunOptions,
) -> None:
    """Run a recipe stage by stage (see RUN_HELP)."""
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
    app.command(help=RUN_HELP)(run)
    app.command()(recipes)
