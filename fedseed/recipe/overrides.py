"""Recipe transformations: a recipe with some of its fields set (an assignment of the
search space, a task override, a fixed step budget), validated as a whole.

Apart from :mod:`fedseed.recipe.search` (the search-space types) so that the model
(which holds a search space) and the code that rewrites recipes (which needs the
model and the codec) import each other in one direction only.
"""

from __future__ import annotations

from collections.abc import Mapping

from fedseed.errors import RecipeError
from fedseed.recipe.codec import canonical_dict, recipe_from_dict
from fedseed.recipe.model import Recipe
from fedseed.recipe.search import SEARCHABLE_PATHS, Scalar, SearchPath


def apply_assignment(recipe: Recipe,
                     assignment: Mapping[str, Scalar] | Mapping[SearchPath, Scalar]) -> Recipe:
    """Return a copy of ``recipe`` with each dotted path set to its assigned value.

    The result is validated as a whole, so an assignment that breaks a bound or a
    cross-field rule raises :class:`RecipeError` naming the path and value.
    """
    data = canonical_dict(recipe)
    for path, value in assignment.items():
        if path not in SEARCHABLE_PATHS:
            raise RecipeError(
                f"cannot set '{path}': settable paths are {', '.join(SEARCHABLE_PATHS)}"
            )
        section, field = path.split(".")
        if section not in data:
            raise RecipeError(f"cannot set '{path}': the recipe has no '{section}' section")
        if field == "momentum" and data[section].get("name") != "sgd":
            raise RecipeError(f"cannot set '{path}': only the sgd optimizer has momentum")
        data[section] = {**data[section], field: value}
    return recipe_from_dict(data, source=f"{recipe.name} with {dict(assignment)}")


#: Task fields a user may change when deriving a recipe for their own data (``--set``
#: on ``fedseed personalize`` and ``fedseed recipe new``). They change the problem, not
#: how it is trained, so no search space explores them.
TASK_PATHS: tuple[str, ...] = ("task.num_labels", "task.metric")


def apply_overrides(recipe: Recipe, overrides: Mapping[str, Scalar]) -> Recipe:
    """``recipe`` with task fields (:data:`TASK_PATHS`) and searchable paths set.

    Changing ``task.num_labels`` drops a ``task.labels`` list of another length (the
    class names no longer fit). Validated as a whole, like :func:`apply_assignment`.
    """
    task = {p: v for p, v in overrides.items() if p in TASK_PATHS}
    rest = {p: v for p, v in overrides.items() if p not in TASK_PATHS}
    unknown = [p for p in rest if p not in SEARCHABLE_PATHS]
    if unknown:
        raise RecipeError(f"cannot set '{unknown[0]}': settable paths are "
                          f"{', '.join((*TASK_PATHS, *SEARCHABLE_PATHS))}")
    if task:
        data = canonical_dict(recipe)
        fields = {p.split(".", 1)[1]: v for p, v in task.items()}
        labels = data["task"].get("labels")
        if labels is not None and fields.get("num_labels", len(labels)) != len(labels):
            data["task"].pop("labels")
        data["task"] = {**data["task"], **fields}
        recipe = recipe_from_dict(data, source=f"{recipe.name} with {task}")
    return apply_assignment(recipe, rest) if rest else recipe


def with_step_budget(recipe: Recipe, max_steps: int) -> Recipe:
    """``recipe`` with ``max_steps`` as its step budget; its evaluation interval and
    warmup are shortened to fit inside it. The budget is then fixed: the search space
    no longer explores ``budget.max_steps`` or ``budget.eval_every``."""
    capped = apply_assignment(recipe, {
        "budget.max_steps": max_steps,
        "budget.eval_every": min(recipe.budget.eval_every, max_steps),
        "schedule.warmup_steps": min(recipe.schedule.warmup_steps, max_steps)})
    space = capped.search_space
    if space is None:
        return capped
    kept = {p: d for p, d in space.params.items()
            if p not in ("budget.max_steps", "budget.eval_every")}
    return capped.model_copy(update={"search_space": space.model_copy(
        update={"params": kept}) if kept else None})


def at_constant_lr(recipe: Recipe, lr: float | None) -> Recipe:
    """``recipe`` with a constant schedule, at ``lr`` (None: its own lr): a federated
    round's few local steps, which the recipe's warmup or decay would span entirely."""
    optimizer = recipe.optimizer if lr is None else recipe.optimizer.model_copy(
        update={"lr": lr})
    return recipe.model_copy(update={"optimizer": optimizer,
                                     "schedule": type(recipe.schedule)(name="constant")})


__all__ = ["TASK_PATHS", "apply_assignment", "apply_overrides", "at_constant_lr",
           "with_step_budget"]
