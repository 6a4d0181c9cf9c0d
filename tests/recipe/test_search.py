"""Search spaces and assignments."""

from __future__ import annotations

import pytest

from fedseed.errors import RecipeError
from fedseed.recipe import apply_assignment, load_builtin
from fedseed.recipe.search import Choice, LogUniform


def test_assignment_returns_a_new_validated_recipe():
    recipe = load_builtin("digits-mlp")

    changed = apply_assignment(recipe, {"optimizer.lr": 0.01, "budget.batch_size": 64})

    assert (changed.optimizer.lr, changed.budget.batch_size) == (0.01, 64)
    assert recipe.optimizer.lr == 0.001  # the input is untouched


def test_assignment_outside_bounds_names_the_path():
    with pytest.raises(RecipeError, match="budget.batch_size"):
        apply_assignment(load_builtin("digits-mlp"), {"budget.batch_size": 0})


def test_unsettable_path_is_refused():
    with pytest.raises(RecipeError, match="cannot set 'task.num_labels'"):
        apply_assignment(load_builtin("digits-mlp"), {"task.num_labels": 3})


def test_momentum_only_for_sgd():
    with pytest.raises(RecipeError, match="only the sgd optimizer"):
        apply_assignment(load_builtin("digits-mlp"), {"optimizer.momentum": 0.9})


def test_distributions_map_unit_interval_onto_their_range():
    lu = LogUniform(low=1e-4, high=1e-2)
    choice = Choice(values=[16, 32, 64])

    assert lu.sample(0.0) == pytest.approx(1e-4)
    assert lu.sample(0.5) == pytest.approx(1e-3)
    assert lu.sample(1.0) == pytest.approx(1e-2)
    assert [choice.sample(u) for u in (0.0, 0.5, 0.999, 1.0)] == [16, 32, 64, 64]


def test_inverted_range_is_rejected():
    with pytest.raises(ValueError, match="above high"):
        LogUniform(low=1.0, high=0.1)


def _with_space(params):
    from fedseed.recipe import canonical_dict, recipe_from_dict

    data = canonical_dict(load_builtin("digits-mlp"))
    data["search_space"] = {"params": params}
    return recipe_from_dict(data)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"optimizer.lr": {"kind": "choice", "values": [50, 0.1]}}, "outside"),
        ({"optimizer.lr": {"kind": "choice", "values": ["fast"]}}, "not a number"),
        ({"budget.batch_size": {"kind": "choice", "values": [16.5]}}, "not an integer"),
        ({"budget.batch_size": {"kind": "log_uniform", "low": 8, "high": 64}},
         "integer"),
        ({"optimizer.momentum": {"kind": "uniform", "low": 0.0, "high": 0.9}}, "only sgd"),
        ({"schedule.name": {"kind": "choice", "values": ["cosine", "step"]}}, "choice among"),
        ({"optimizer.weight_decay": {"kind": "uniform", "low": 0.0, "high": 2.0}}, "outside"),
    ],
)
def test_search_space_values_must_fit_their_paths(params, expected):
    with pytest.raises(RecipeError, match=expected):
        _with_space(params)


def test_grad_clip_choice_may_turn_clipping_off():
    recipe = _with_space({"budget.grad_clip": {"kind": "choice", "values": [None, 1.0]}})

    assert apply_assignment(recipe, {"budget.grad_clip": None}).budget.grad_clip is None
