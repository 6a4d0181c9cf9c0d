"""Replay: rebuild ``w = w0 - sum_k c_k z_k`` from a recipe, bit for bit.

Coefficients are applied in ascending seed order (float32 addition is not
associative; the order is part of the format). Cost: one generation of the model's
parameter count per nonzero coefficient, independent of how many steps produced
them; memory: the model plus its largest tensor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fedseed.recipe.trajectory import Trajectory
from fedseed.trajectory.pool import add_perturbation, check_generator, seed_of, trainable

if TYPE_CHECKING:
    import torch


def apply_trajectory(model: torch.nn.Module, trajectory: Trajectory) -> int:
    """Move ``model`` (at ``w0``) along the trajectory; returns the seeds replayed."""
    check_generator(trajectory)
    coefficients = trajectory.coefficient_array()
    params = trainable(model)
    replayed = 0
    for k in range(trajectory.pool_size):
        c = float(coefficients[k])
        if c != 0.0:
            add_perturbation(params, seed_of(trajectory.base_seed, k), -c)
            replayed += 1
    return replayed
