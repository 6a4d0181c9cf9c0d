"""``flora``: fit a surrogate of validation results over (log-)hyperparameters from
every client's evidence, and recommend the single configuration it rates best.

After Zhou et al., "Single-shot Hyper-parameter Optimization for Federated
Learning: A General Algorithm & Analysis" (FLoRA), ICLR 2023. Each round devices
run distinct configurations drawn across the search space (a Latin-hypercube
portfolio), so one round already maps the loss surface; every (configuration,
result) pair seen so far is pooled into one global surrogate (the paper's SGM
variant: each fedseed device reports one pair per round, so per-device surfaces,
APLM/MPLM, are not identifiable). The surrogate is a quadratic response surface
over the search space mapped to the unit cube (log scale for log-uniform ranges),
fitted by ridge-regularised weighted least squares; under ``robust`` by least
trimmed squares (FAST-LTS), so the quarter of pairs no smooth surface explains is
left out. The
recommendation minimises the surrogate over the measured configurations and 2,048
draws from the space (never outside the space's bounds). A diverged run's pair holds
the worst loss seen so far plus their spread (:func:`~fedseed.meta.robust.diverged_loss`),
so it pushes the surface up where it ran, and a configuration that only diverged is
never recommended.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from fedseed.errors import AggregationError
from fedseed.meta.base import AggregatorState, ClientReply, Options, assignment_key, draw_candidates
from fedseed.meta.best import require_replies
from fedseed.meta.finish import next_meta
from fedseed.meta.robust import badness, client_weights, diverged, diverged_loss, screen
from fedseed.recipe.model import Recipe
from fedseed.recipe.portfolio import Candidate, Portfolio
from fedseed.recipe.search import Choice, LogUniform, Scalar, SearchSpace

#: Ridge penalty of the quadratic surrogate (features live in the unit cube).
RIDGE = 1e-4
#: Under robust fitting, the share of pairs the surrogate is fitted to (the rest,
#: those it explains worst, are treated as outliers: least trimmed squares).
TRIM_KEEP = 0.75
_DRAWS = 2048
_STARTS = 64
_C_STEPS = 4


def encode(space: SearchSpace, assignment: Mapping[str, Scalar]) -> np.ndarray:
    """An assignment as a point of the unit cube, one coordinate per searched path."""
    coords = []
    for path, dist in space.params.items():
        value = assignment.get(path)
        if isinstance(dist, Choice):
            values = dist.values
            numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
                          for v in values)
            if numeric and isinstance(value, (int, float)) and len(values) > 1:
                low, high = math.log(min(values)), math.log(max(values))  # type: ignore[type-var, arg-type]
                coords.append((math.log(value) - low) / (high - low) if high > low else 0.5)
            else:
                index = values.index(value) if value in values else 0
                coords.append(index / max(1, len(values) - 1))
        elif isinstance(value, (int, float)):
            if isinstance(dist, LogUniform):
                low, high = math.log(dist.low), math.log(dist.high)
                x = math.log(max(value, 1e-300))
            else:
                low, high, x = dist.low, dist.high, float(value)
            coords.append(min(1.0, max(0.0, (x - low) / (high - low))) if high > low else 0.5)
        else:
            coords.append(0.5)
    return np.asarray(coords, dtype=float)


def _features(x: np.ndarray) -> np.ndarray:
    """Additive quadratic features of unit-cube points: 1, x_i, x_i^2. Cross terms
    would need more pairs than a round of a small federation provides."""
    x = np.atleast_2d(x)
    return np.column_stack([np.ones(x.shape[0]), x, x ** 2])


class Surrogate:
    """A quadratic response surface of the loss over the unit cube (ridge-regularised
    weighted least squares).

    Under ``robust`` it is fitted by least trimmed squares (FAST-LTS: fits from many
    small random subsets, each refined by concentration steps, keeping the one whose
    best-explained :data:`TRIM_KEEP` share of pairs fits best), so results that no
    smooth surface through the majority can explain, fabricated ones, drop out.
    """

    def __init__(self, points: np.ndarray, values: np.ndarray, weights: np.ndarray,
                 robust: bool, seed: int = 0) -> None:
        self.kept = np.ones(len(values), dtype=bool)
        self.coef = self._fit(points, values, weights)
        phi = _features(points)
        h = int(np.ceil(TRIM_KEEP * len(values)))
        if not robust or len(values) < phi.shape[1] + 4:
            return
        rng = np.random.default_rng(seed)
        best = (np.inf, self.coef, self.kept)
        for _ in range(_STARTS):
            keep = np.zeros(len(values), dtype=bool)
            keep[rng.choice(len(values), size=phi.shape[1], replace=False)] = True
            for _ in range(_C_STEPS):
                coef = self._fit(points[keep], values[keep], weights[keep])
                residual = (phi @ coef - values) ** 2
                keep = np.zeros(len(values), dtype=bool)
                keep[np.argsort(residual, kind="stable")[:h]] = True
            cost = float(np.sort(residual)[:h].sum())
            if cost < best[0]:
                best = (cost, coef, keep)
        _, self.coef, self.kept = best

    @staticmethod
    def _fit(points: np.ndarray, values: np.ndarray, weights: np.ndarray) -> np.ndarray:
        phi = _features(points)
        w = weights / weights.mean()
        penalty = RIDGE * len(values) * np.eye(phi.shape[1])
        penalty[0, 0] = 1e-9  # the intercept is not shrunk
        return np.linalg.solve(phi.T @ (phi * w[:, None]) + penalty, phi.T @ (w * values))

    def predict(self, x: np.ndarray) -> float:
        """Predicted loss at ``x`` (lower is better)."""
        return float((_features(x) @ self.coef)[0])


class Flora:
    """The ``flora`` aggregator (see the module docstring)."""

    name = "flora"

    def __init__(self, options: Options = Options(), explore: int = 32) -> None:
        self.options = options
        self.explore = explore

    def _portfolio(self, meta: Recipe, seed: int, stage: int) -> Portfolio | None:
        if meta.search_space is None:
            return None
        drawn = draw_candidates(meta.search_space, self.explore, random.Random(seed))
        weight = 1.0 / len(drawn)
        candidates = [Candidate(assignment=a, weight=weight) for a in drawn]
        candidates[-1] = candidates[-1].model_copy(
            update={"weight": 1.0 - weight * (len(drawn) - 1)})
        return Portfolio(method=self.name, stage=stage, candidates=candidates)

    def prepare(self, meta: Recipe) -> Recipe:
        """Round 0: a portfolio of distinct configurations spanning the space."""
        return meta.model_copy(update={"portfolio": self._portfolio(meta, self.options.seed, 0)})

    def __call__(self, meta: Recipe, replies: Sequence[ClientReply],
                 state: AggregatorState) -> tuple[Recipe, AggregatorState]:
        """Pool this round's pairs with earlier ones, refit, recommend the minimiser."""
        robust = self.options.robust
        screened = screen(replies, robust)
        require_replies(screened.kept, self.name)
        round_ = state.round + 1
        space = meta.search_space
        if space is None:
            nxt = next_meta(meta, {}, replies=replies, budget_evidence=screened.kept,
                            portfolio=None, search_space=None, round_=round_,
                            method=self.name, options=self.options, kept=screened.kept)
            return nxt, replace(state, round=round_)
        # Each pair is one device's word: under robust none counts for more than the
        # median device, so inflated example counts cannot steer the fit.
        weights = client_weights(screened.kept, robust, cap=1.0)
        # A pair's loss is None for a diverged run: it gets the worst loss of the pool
        # at every refit, so that it follows the pool rather than a round's snapshot.
        pairs = tuple(state.values.get("pairs", ())) + tuple(
            (dict(r.assignment), None if diverged(r) else badness(r), w)
            for r, w in zip(screened.kept, weights, strict=True))
        finite = [b for _, b, _ in pairs if b is not None]
        if not finite:
            raise AggregationError(f"{self.name}: every configuration run so far diverged (its "
                                   "loss went non-finite); keeping the current meta-recipe "
                                   "(narrow the search space, a lower learning rate first)")
        worst = diverged_loss(finite)
        surrogate = Surrogate(np.stack([encode(space, a) for a, _, _ in pairs]),
                              np.asarray([worst if b is None else b for _, b, _ in pairs]),
                              np.asarray([w for _, _, w in pairs]), robust,
                              seed=self.options.seed + round_)
        rng = random.Random(self.options.seed * 7919 + round_)
        converged = {assignment_key(a) for a, b, _ in pairs if b is not None}
        failed = {assignment_key(a) for a, b, _ in pairs if b is None} - converged
        options = {assignment_key(a): a for a, _, _ in pairs}
        for a in draw_candidates(space, _DRAWS, rng):
            options.setdefault(assignment_key(a), a)
        options = {k: a for k, a in options.items() if k not in failed}
        ranked = sorted(options.items(),
                        key=lambda kv: (surrogate.predict(encode(space, kv[1])), kv[0]))
        recommended: dict[str, Scalar] = dict(ranked[0][1])
        predicted = surrogate.predict(encode(space, recommended))
        near = [r for r in screened.kept
                if np.sum((encode(space, r.assignment) - encode(space, recommended)) ** 2)
                <= 0.3 ** 2]
        nxt = next_meta(meta, recommended, replies=replies,
                        budget_evidence=near or screened.kept,
                        portfolio=self._portfolio(meta, self.options.seed + round_, round_),
                        search_space=space, round_=round_, method=self.name,
                        options=self.options, kept=screened.kept)
        return nxt, replace(state, round=round_, values={
            "pairs": pairs, "predicted_val_loss": predicted, "flagged": screened.flagged,
            "outliers": int((~surrogate.kept).sum())})
