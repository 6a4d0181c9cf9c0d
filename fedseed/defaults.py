"""Defaults that several layers share, defined once.

The recipe schema (:class:`fedseed.recipe.trajectory.Trajectory`), the trajectory
aggregator, :class:`fedseed.federation.config.FederationConfig`, ``fedseed simulate``
and the Flower run config in ``pyproject.toml`` all take their seed-trajectory
settings from :data:`TRAJECTORY`; a test fails if ``pyproject.toml`` drifts from it.
This module imports nothing, so the command line can read it at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrajectoryDefaults:
    """Seed-trajectory settings of a round-0 meta-recipe (docs/seed-trajectories.md).

    Tuned on digits (16 users, 10 rounds, 3 seeds each; docs/results/trajectory.md):
    100 zeroth-order steps of 16 pool seeds at lr 0.005 and a server learning rate of
    2 reached a shared accuracy of 0.94; server lr 3 diverged.
    """

    pool_size: int = 1024
    steps: int = 100
    lr: float = 0.005
    epsilon: float = 0.001
    seeds_per_step: int = 16
    sampling: str = "uniform"
    server_lr: float = 2.0


TRAJECTORY = TrajectoryDefaults()

#: The fixed hypothesis seed of `fedseed bench robustness` (recorded in its results).
ROBUSTNESS_SEED = 20260101
