"""Search spaces: which configuration knobs a meta-recipe explores, and their ranges.

A search space maps a dotted recipe path (``optimizer.lr``) to a distribution. An
*assignment* picks one value per path; :func:`apply_assignment` returns a new,
re-validated recipe with those values, so a device never runs a configuration the
schema would reject.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal, get_args

from pydantic import Discriminator, Field, model_validator

from fedseed.recipe._base import MAX_STEPS, StrictModel

#: Recipe fields a search space (or ``--set``) may change.
SearchPath = Literal[
    "optimizer.lr",
    "optimizer.weight_decay",
    "optimizer.momentum",
    "schedule.name",
    "schedule.warmup_steps",
    "budget.batch_size",
    "budget.max_steps",
    "budget.grad_clip",
    "budget.eval_every",
]
SEARCHABLE_PATHS: tuple[str, ...] = get_args(SearchPath)
Scalar = int | float | str | bool | None
Bound = Annotated[float, Field(ge=-1e9, le=1e9)]


class LogUniform(StrictModel):
    """Log-uniform over ``[low, high]``, both positive; ``integer`` rounds draws."""

    kind: Literal["log_uniform"] = "log_uniform"
    low: Annotated[float, Field(gt=0.0, le=1e9)]
    high: Annotated[float, Field(gt=0.0, le=1e9)]
    integer: bool = False

    @model_validator(mode="after")
    def _order(self) -> LogUniform:
        if self.low > self.high:
            raise ValueError(f"low {self.low} is above high {self.high}")
        return self

    def sample(self, u: float) -> float | int:
        """Map ``u`` in ``[0, 1]`` to a value of the range."""
        value = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        return round(value) if self.integer else value


class Uniform(StrictModel):
    """Uniform over ``[low, high]``; ``integer`` rounds draws."""

    kind: Literal["uniform"] = "uniform"
    low: Bound
    high: Bound
    integer: bool = False

    @model_validator(mode="after")
    def _order(self) -> Uniform:
        if self.low > self.high:
            raise ValueError(f"low {self.low} is above high {self.high}")
        return self

    def sample(self, u: float) -> float | int:
        """Map ``u`` in ``[0, 1]`` to a value of the range."""
        value = self.low + u * (self.high - self.low)
        return round(value) if self.integer else value


class Choice(StrictModel):
    """A finite set of values."""

    kind: Literal["choice"] = "choice"
    values: Annotated[list[Scalar], Field(min_length=1, max_length=64)]

    def sample(self, u: float) -> Scalar:
        """Map ``u`` in ``[0, 1)`` to one of the values."""
        return self.values[min(int(u * len(self.values)), len(self.values) - 1)]


Distribution = Annotated[LogUniform | Uniform | Choice, Discriminator("kind")]


#: What each searchable path accepts: value kind and inclusive bounds (a strictly
#: positive lower bound is written as the smallest positive float).
_RULES: dict[str, tuple[str, float, float]] = {
    "optimizer.lr": ("float", 5e-324, 10.0),
    "optimizer.weight_decay": ("float", 0.0, 1.0),
    "optimizer.momentum": ("float", 0.0, 0.999999),
    "schedule.warmup_steps": ("int", 0, MAX_STEPS),
    "budget.batch_size": ("int", 1, 65_536),
    "budget.max_steps": ("int", 1, MAX_STEPS),
    "budget.grad_clip": ("float-or-null", 5e-324, 1e6),
    "budget.eval_every": ("int", 1, MAX_STEPS),
}
_SCHEDULES = ("constant", "linear", "cosine")


class SearchSpace(StrictModel):
    """The configuration knobs a meta-recipe explores, by dotted recipe path.

    Every value a distribution can produce is checked against what its path accepts,
    so a search space that would hand a device an invalid configuration is rejected
    when the recipe is read.
    """

    params: Annotated[dict[SearchPath, Distribution], Field(min_length=1)]

    @model_validator(mode="after")
    def _values_fit_their_paths(self) -> SearchSpace:
        for path, dist in self.params.items():
            problem = _check(path, dist)
            if problem:
                raise ValueError(f"params.{path}: {problem}")
        return self


def _shown(low: float, high: float) -> str:
    return f"({0:g}, {high:g}]" if 0 < low < 1e-300 else f"[{low:g}, {high:g}]"


def _check(path: str, dist: LogUniform | Uniform | Choice) -> str | None:
    if path == "schedule.name":
        if not isinstance(dist, Choice) or any(v not in _SCHEDULES for v in dist.values):
            return f"must be a choice among {', '.join(_SCHEDULES)}"
        return None
    kind, low, high = _RULES[path]
    if isinstance(dist, Choice):
        for value in dist.values:
            if value is None and kind == "float-or-null":
                continue
            if not isinstance(value, (int, float)) or isinstance(value, bool) or (
                    kind == "int" and not isinstance(value, int)):
                return f"value {value!r} is not {'an integer' if kind == 'int' else 'a number'}"
            if not low <= value <= high:
                return f"value {value!r} is outside {_shown(low, high)}"
        return None
    if kind == "int" and not dist.integer:
        return "ranges over an integer field need \"integer\": true"
    if dist.low < low or dist.high > high:
        return f"range [{dist.low:g}, {dist.high:g}] is outside {_shown(low, high)}"
    return None
