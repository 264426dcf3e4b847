"""Recipes: typed schema, YAML loader with ``key.path=value`` overrides, shipped catalog, runner."""

from rlhf.recipe.loader import load_recipe
from rlhf.recipe.schema import Recipe, ResolvedStage

__all__ = ["Recipe", "ResolvedStage", "load_recipe"]
