"""``trajectory``: add the clients' per-seed sums to the shared model's coefficients.

``c <- c + server_lr * mean_i(u_i)``, where ``u_i`` is client i's dense per-seed
update (zero for seeds it did not draw) and the mean is sample-weighted (FedAvg in
seed space: with one client and ``server_lr = 1`` the shared model moves exactly as
that client's local model did; a client whose run diverged moves nothing). Under
``robust`` every client's update is clipped to
the median update norm and weights are capped at the median example count, so no
single reply can move the shared model further than a typical one (after
Blanchard et al.'s and Sun et al.'s norm-bounding defences).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace

import numpy as np

from fedseed.defaults import TRAJECTORY
from fedseed.errors import AggregationError
from fedseed.meta.base import AggregatorState, ClientReply, Options
from fedseed.meta.robust import client_weights, diverged, robust_mean
from fedseed.privacy.mechanisms import private_mean
from fedseed.recipe.evidence import Lineage
from fedseed.recipe.model import Recipe
from fedseed.recipe.trajectory import Trajectory, decode_floats, decode_indices, encode_floats
from fedseed.trajectory.pool import torch_version

#: Seed pool and zeroth-order settings of a round-0 trajectory meta-recipe.
DEFAULTS = asdict(TRAJECTORY)


def dense_update(trajectory: Trajectory) -> np.ndarray:
    """A client's update as one float32 per pool seed."""
    assert trajectory.update is not None
    out = np.zeros(trajectory.pool_size, dtype=np.float64)
    seeds = decode_indices(trajectory.update.seeds)
    out[seeds] = decode_floats(trajectory.update.sums)
    return out


class TrajectoryAggregator:
    """The ``trajectory`` aggregator (see the module docstring)."""

    name = "trajectory"

    def __init__(self, options: Options = Options(), **settings: object) -> None:
        self.options = options
        self.settings = {**DEFAULTS, **settings}

    def prepare(self, meta: Recipe) -> Recipe:
        """Round 0: a trajectory section with zero coefficients (``w = w0``); no search
        space or portfolio (every device runs the same zeroth-order steps)."""
        if meta.trajectory is not None:
            trajectory = meta.trajectory
        else:
            trajectory = Trajectory(generator_version=torch_version(),
                                    base_seed=self.options.seed, **self.settings)
        zeros = np.zeros(trajectory.pool_size, dtype=np.float32)
        if trajectory.coefficients is None:
            trajectory = trajectory.model_copy(update={"coefficients": encode_floats(zeros)})
        return meta.model_copy(update={"trajectory": trajectory, "search_space": None,
                                       "portfolio": None, "warm_start": None})

    def __call__(self, meta: Recipe, replies: Sequence[ClientReply],
                 state: AggregatorState) -> tuple[Recipe, AggregatorState]:
        """One server step on the coefficients."""
        t = meta.trajectory
        if t is None:
            raise AggregationError("trajectory: the meta-recipe has no trajectory section; "
                                   "start the federation with --mode trajectory")
        # A diverged client's update is never applied (its loss went non-finite).
        usable = [r for r in replies if r.recipe.trajectory is not None
                  and r.recipe.trajectory.update is not None
                  and r.recipe.trajectory.pool_size == t.pool_size and not diverged(r)]
        if not usable:
            raise AggregationError("trajectory: no client recipe carries a seed update "
                                   "from a run that did not diverge; "
                                   "keeping the current meta-recipe")
        updates = np.stack([dense_update(r.recipe.trajectory) for r in usable])  # type: ignore[arg-type]
        norms = np.linalg.norm(updates, axis=1)
        if meta.privacy is not None:  # fixed clip, uniform weights, Gaussian noise
            step, clipped = private_mean(updates, meta.privacy)
        else:
            step, clipped = robust_mean(updates, client_weights(usable, self.options.robust),
                                        self.options.robust)
        coefficients = (t.coefficient_array().astype(np.float64) + t.server_lr * step)
        round_ = state.round + 1
        nxt = meta.model_copy(update={
            "trajectory": t.model_copy(update={
                "coefficients": encode_floats(coefficients.astype(np.float32)),
                "update": None}),
            "evidence": None,
            "lineage": Lineage(parents=sorted({r.digest for r in replies}), round=round_,
                               method=self.name),
        })
        return nxt, replace(state, round=round_, values={
            "clients": len(usable), "clipped": clipped,
            "update_norm_median": float(np.median(norms)),
            "seeds_touched": int((step != 0).sum())})
