"""``projection``: aggregate first-order seed-projection coefficients (after Ferret,
Shu et al., ICML 2025) into the next round's meta-recipe.

``a_{r+1} = sum_i n_i a_i / sum_i n_i`` over replies that did not diverge and answer
this round (``round = r + 1``, ``previous`` = this meta-recipe's digest, the same
bases); under ``robust`` every coefficient vector is clipped to the median norm and
weights are capped at the median example count (as the zeroth-order aggregator
does). The next meta-recipe holds ``a_{r+1}`` and names this one: the shared model
is a chain (:mod:`fedseed.trajectory.chain`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from fedseed.assemble import assemble
from fedseed.errors import AggregationError
from fedseed.meta.base import AggregatorState, ClientReply, Options
from fedseed.meta.robust import client_weights, diverged, robust_mean
from fedseed.privacy.mechanisms import coefficient_weights, private_mean
from fedseed.recipe.codec import recipe_digest
from fedseed.recipe.evidence import Lineage
from fedseed.recipe.model import Recipe
from fedseed.recipe.trajectory import decode_values, encode_values
from fedseed.trajectory.projection import DENSE_LIMIT, new_projection


class ProjectionAggregator:
    """The ``projection`` aggregator (see the module docstring)."""

    name = "projection"

    def __init__(self, options: Options = Options(), *, total_k: int = 1024,
                 server_lr: float = 1.0, floor: int = 8, dtype: str = "float32",
                 dense_limit: int = DENSE_LIMIT) -> None:
        self.options = options
        self.total_k, self.server_lr, self.floor = total_k, server_lr, floor
        self.dtype, self.dense_limit = dtype, dense_limit

    def prepare(self, meta: Recipe) -> Recipe:
        """Round 0: a projection section planned for the recipe's model (``w = w0``)."""
        if meta.projection is None:
            section = new_projection(assemble(meta), self.total_k, base_seed=self.options.seed,
                                     server_lr=self.server_lr, floor=self.floor,
                                     dtype=self.dtype, dense_limit=self.dense_limit)
            meta = meta.model_copy(update={"projection": section})
        return meta.model_copy(update={"search_space": None, "portfolio": None,
                                       "warm_start": None, "trajectory": None})

    def __call__(self, meta: Recipe, replies: Sequence[ClientReply],
                 state: AggregatorState) -> tuple[Recipe, AggregatorState]:
        """One server step: the robust mean of this round's coefficient vectors."""
        p = meta.projection
        if p is None:
            raise AggregationError("projection: the meta-recipe has no projection section; "
                                   "start the federation with --trajectory-method first-order")
        digest = recipe_digest(meta)
        usable = [r for r in replies if (q := r.recipe.projection) is not None
                  and q.update is not None and q.round == p.round + 1
                  and q.previous == digest and q.groups == p.groups and q.dtype == p.dtype
                  and not diverged(r)]
        if not usable:
            raise AggregationError("projection: no client recipe carries this round's "
                                   "coefficients from a run that did not diverge; "
                                   "keeping the current meta-recipe")
        vectors = np.stack([decode_values(r.recipe.projection.update, p.dtype)  # type: ignore[union-attr,arg-type]
                            for r in usable]).astype(np.float64)
        norms = np.linalg.norm(vectors, axis=1)
        if meta.privacy is not None:  # fixed clip, uniform weights, Gaussian noise
            units = coefficient_weights(p)  # in the units of the rebuilt update
            mean, clipped = private_mean(vectors * units, meta.privacy)
            mean = mean / units
            if p.dtype == "float16":  # noise may pass float16's range: saturate
                mean = np.clip(mean, -65504.0, 65504.0)
        else:
            mean, clipped = robust_mean(vectors, client_weights(usable, self.options.robust),
                                        self.options.robust)
        round_ = state.round + 1
        nxt = meta.model_copy(update={
            "projection": p.model_copy(update={
                "round": p.round + 1, "previous": digest,
                "coefficients": encode_values(mean, p.dtype), "update": None}),
            "evidence": None,
            "lineage": Lineage(parents=sorted({r.digest for r in replies}), round=round_,
                               method=self.name),
        })
        return nxt, replace(state, round=round_, values={
            "clients": len(usable), "clipped": clipped,
            "update_norm_median": float(np.median(norms))})
