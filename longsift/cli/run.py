"""`longsift run RECIPE`: a whole study from a YAML recipe, resumable."""

from __future__ import annotations

import typer
from rich.console import Console

console = Console(stderr=True)


def run(
    recipe: str = typer.Argument(..., help="A recipe file, or the name of a shipped recipe (see `--list`)."),
    set_: list[str] = typer.Option([], "--set", help="Override a recipe key: stages.train.with.epochs=2."),
    force: list[str] = typer.Option([], "--force", help="Rerun this stage even if it is done (repeatable)."),
    until: str | None = typer.Option(None, "--until", help="Stop after this stage."),
    run_dir: str | None = typer.Option(None, "--run-dir", help="Where the run's artifacts go."),
) -> None:
    """Run a recipe stage by stage; finished stages are skipped, a stage that died runs again."""
    from longsift.pipeline import load_recipe, run_recipe

    overrides = [*set_, *([f"run_dir={run_dir}"] if run_dir else [])]
    result = run_recipe(load_recipe(recipe, overrides), force=force, until=until, console=console)
    console.print(
        f"done: ran {len(result.ran)} stage(s) {result.ran}, skipped {len(result.skipped)} {result.skipped}; "
        f"artifacts in {result.run_dir}"
    )


def recipes() -> None:
    """List the shipped recipes."""
    from longsift.pipeline.recipe import RECIPES_DIR

    for path in sorted(RECIPES_DIR.glob("*.yaml")):
        print(path.stem)


def register(app: typer.Typer) -> None:
    app.command()(run)
    app.command()(recipes)
