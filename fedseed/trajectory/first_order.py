"""The client step of first-order seed projection: train as the recipe says (its
optimizer, schedule and budget, :func:`fedseed.train.loop.train`) from the shared
model ``w_r``, then project ``Delta = w_local - w_r`` per tensor onto round
``r + 1``'s seeded bases. The reply recipe carries the coefficients, never weights.
A diverged run uploads zeros (and says ``diverged``; the server applies none of it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fedseed.data.examples import Examples
from fedseed.personalize import personalize_examples
from fedseed.recipe.codec import recipe_digest
from fedseed.recipe.model import Recipe
from fedseed.recipe.trajectory import encode_values
from fedseed.trajectory.projection import check_projection, project

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class FOResult:
    """A client's first-order run: its reply recipe (no weights) and the local model."""

    recipe: Recipe
    model: torch.nn.Module
    seconds: float


def fo_train(meta: Recipe, shared: torch.nn.Module, examples: Examples) -> FOResult:
    """Train from ``shared`` (the replayed ``w_r`` of ``meta``) and project the update."""
    p = meta.projection
    if p is None:
        raise ValueError("fo_train needs a recipe with a projection section")
    started = time.perf_counter()
    start = [t.detach().clone() for t in check_projection(shared, p)]
    done = personalize_examples(meta, examples, method="client-fo",
                                initial_state=shared.state_dict())
    local = done.result.model
    evidence = done.recipe.evidence
    assert evidence is not None
    if evidence.diverged:
        coefficients = np.zeros(p.total_k, dtype=np.float32)
    else:
        deltas = [after.detach() - before
                  for after, before in zip(check_projection(local, p), start, strict=True)]
        coefficients = project(deltas, p, p.round + 1)
        if p.dtype == "float16":  # a coefficient beyond float16's range is an outlier
            coefficients = np.clip(coefficients, -65504.0, 65504.0)  # the server clips anyway
    section = p.model_copy(update={"round": p.round + 1, "previous": recipe_digest(meta),
                                   "coefficients": None,
                                   "update": encode_values(coefficients, p.dtype)})
    child = done.recipe.model_copy(update={"projection": section})
    return FOResult(recipe=child, model=local, seconds=time.perf_counter() - started)
