"""Recipes: typed, bounded, canonical descriptions of how to build and train a model.

>>> from fedseed.recipe import resolve_recipe, recipe_digest
>>> recipe = resolve_recipe("digits-mlp")
>>> recipe_digest(recipe).startswith("sha256:")
True
"""

from fedseed.recipe.builtin import builtin_names, load_builtin, resolve_recipe
from fedseed.recipe.codec import (
    MAX_RECIPE_BYTES,
    canonical_bytes,
    canonical_dict,
    digest_bytes,
    parse_recipe,
    read_recipe_file,
    recipe_digest,
    recipe_from_dict,
)
from fedseed.recipe.derive import child_recipe
from fedseed.recipe.evidence import (
    CurvePoint,
    Evidence,
    ExampleCounts,
    FinalMetrics,
    Lineage,
    TensorStats,
)
from fedseed.recipe.model import SCHEMA_VERSION, Recipe
from fedseed.recipe.overrides import apply_assignment
from fedseed.recipe.search import SEARCHABLE_PATHS, SearchSpace

__all__ = [
    "MAX_RECIPE_BYTES",
    "SCHEMA_VERSION",
    "SEARCHABLE_PATHS",
    "CurvePoint",
    "Evidence",
    "ExampleCounts",
    "FinalMetrics",
    "Lineage",
    "Recipe",
    "SearchSpace",
    "TensorStats",
    "apply_assignment",
    "builtin_names",
    "canonical_bytes",
    "canonical_dict",
    "child_recipe",
    "digest_bytes",
    "load_builtin",
    "parse_recipe",
    "read_recipe_file",
    "recipe_digest",
    "recipe_from_dict",
    "resolve_recipe",
]
