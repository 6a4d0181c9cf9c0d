"""The demo job: personalise a built-in recipe for simulated users of the digits set.

Each user gets a Dirichlet share of scikit-learn's digits (non-IID: a few classes
dominate each user), trains locally from the same recipe, and keeps its weights;
only the client recipe (configuration + evidence) would ever leave the device.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fedseed.data.builtin import load_digits
from fedseed.data.partition import partition
from fedseed.personalize import Personalized, personalize_examples
from fedseed.recipe.codec import canonical_bytes
from fedseed.recipe.model import Recipe


@dataclass(frozen=True)
class UserResult:
    """One simulated user's outcome."""

    user: int
    examples: int
    classes: int
    steps: int
    val_metric: float
    test_metric: float
    recipe_bytes: int
    personalized: Personalized


def run_demo(recipe: Recipe, *, users: int = 8, alpha: float = 0.5, seed: int = 0,
             on_user: Callable[[int], None] | None = None) -> list[UserResult]:
    """Personalise ``recipe`` for ``users`` Dirichlet(``alpha``) shares of digits."""
    parts = partition(load_digits(), users, partitioner="dirichlet", alpha=alpha, seed=seed)
    results = []
    for user, examples in enumerate(parts):
        done = personalize_examples(recipe, examples)
        evidence = done.recipe.evidence
        assert evidence is not None and examples.labels is not None
        results.append(UserResult(
            user=user,
            examples=len(examples),
            classes=int(np.unique(examples.labels).size),
            steps=evidence.steps,
            val_metric=evidence.final.val_metric,
            test_metric=evidence.final.test_metric or 0.0,
            recipe_bytes=len(canonical_bytes(done.recipe)),
            personalized=done,
        ))
        if on_user is not None:
            on_user(user)
    return results
