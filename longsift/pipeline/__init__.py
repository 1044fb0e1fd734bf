"""`longsift run RECIPE.yaml`: whole studies as recipes, each stage skipped when done and resumed when it died.

Only this package (and the CLI) knows the order of the stages; the stages themselves never import each other.
"""

from longsift.pipeline.recipe import Recipe, StageSpec, load_recipe
from longsift.pipeline.runner import RunResult, run_recipe

__all__ = ["Recipe", "RunResult", "StageSpec", "load_recipe", "run_recipe"]
