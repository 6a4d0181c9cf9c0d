"""Reading recipe JSON: hostile input is one clear RecipeError, never another exception
(cases found by `fedseed bench robustness`)."""

from __future__ import annotations

import pytest

from fedseed.errors import RecipeError
from fedseed.recipe import canonical_bytes, load_builtin, parse_recipe


def test_deeply_nested_json_is_a_recipe_error_not_a_recursion_error():
    # Prepare: 200,000 nested lists fit in the 1 MiB limit and overflow the JSON
    # reader's stack (RecursionError); a signed reply like it stopped the server's round.
    raw = canonical_bytes(load_builtin("digits-mlp"))
    nested = raw.replace(b'"tabular"', b"[" * 200_000 + b"]" * 200_000, 1)

    # Execute / Assert
    with pytest.raises(RecipeError, match="nested too deeply"):
        parse_recipe(nested, "r.json")


def test_number_of_5000_digits_is_a_recipe_error_not_a_value_error():
    raw = canonical_bytes(load_builtin("digits-mlp"))
    huge = raw.replace(b'"seed":0', b'"seed":' + b"9" * 5000, 1)

    with pytest.raises(RecipeError, match="too many digits"):
        parse_recipe(huge, "r.json")


def test_text_with_a_lone_surrogate_is_a_recipe_error_not_a_unicode_error():
    text = canonical_bytes(load_builtin("digits-mlp")).decode().replace("MLP", "\ud800", 1)

    with pytest.raises(RecipeError, match="not encodable as UTF-8"):
        parse_recipe(text, "r.json")
