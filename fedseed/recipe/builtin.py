"""Built-in recipes, shipped in the wheel and addressable by name.

In a wheel they live in ``fedseed/recipes``; in a source checkout (editable
install) they are read from the top-level ``recipes/`` folder.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from fedseed.errors import RecipeError
from fedseed.recipe.codec import read_recipe_file
from fedseed.recipe.model import Recipe


@lru_cache(maxsize=1)
def builtin_dir() -> Path:
    """The folder holding the built-in recipe files."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "recipes", package.parent / "recipes"):
        if candidate.is_dir():
            return candidate
    raise RecipeError("built-in recipes are missing from this installation; reinstall fedseed")


def builtin_names() -> list[str]:
    """Names of the built-in recipes, sorted."""
    return sorted(path.stem for path in builtin_dir().glob("*.json"))


def load_builtin(name: str) -> Recipe:
    """Load the built-in recipe ``name`` (e.g. ``digits-mlp``)."""
    path = builtin_dir() / f"{name}.json"
    if "/" in name or not path.is_file():
        raise RecipeError(
            f"no built-in recipe '{name}'; built-ins are {', '.join(builtin_names())}"
        )
    return read_recipe_file(path)


def resolve_recipe(ref: str) -> Recipe:
    """Load a recipe from a file path or a built-in name.

    A path that exists wins; otherwise a name without path separators or a
    ``.json`` suffix is looked up among the built-ins.
    """
    path = Path(ref)
    if path.exists() or "/" in ref or ref.endswith(".json"):
        return read_recipe_file(path)
    if ref in builtin_names():
        return load_builtin(ref)
    raise RecipeError(
        f"recipe '{ref}' is neither a file nor a built-in name "
        f"(built-ins: {', '.join(builtin_names())})"
    )
