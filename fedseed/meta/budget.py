"""Budget from curves: the smallest ``max_steps`` that is enough.

Each client's validation-loss curve, up to its lowest point (what follows is
overfitting, not learning), is fitted with two saturating models, exponential
``y = a - b exp(-c t)`` and power law ``y = a - b t^-c`` (``y`` is minus the loss),
whichever fits better. The loss is used rather than the metric because an accuracy
on a few dozen validation examples moves in coarse steps and often saturates at 1.0
on a device that holds two classes, which would declare almost any budget enough.
The client's enough-step count is where the fit has covered 98% of the way to its
plateau ``a`` (from step 0 for the exponential model, from the first evaluation for
the power law). The meta-recipe's budget is the weighted 75th percentile over
clients (enough for most devices, not only the typical one), rounded up to a whole
number of evaluations, and clipped (rounding down) to 1.5x the steps the evidence
covers and to the largest budget the meta-recipe allows: the fit may interpolate,
never extrapolate far, and never raises a budget past what the operator set.
Diverged replies' curves are left out.

Fitting is a grid over the rate ``c`` with ordinary least squares for ``a, b``:
no optimizer, no scipy, deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fedseed.meta.base import ClientReply
from fedseed.meta.robust import client_weights, weighted_quantile

#: Share of the way to the plateau that counts as "enough".
TARGET = 0.98
#: The share of clients (by weight) the budget must be enough for.
QUANTILE = 0.75
#: The budget may exceed what the evidence covered by at most this factor.
EXTRAPOLATION = 1.5
_MIN_POINTS = 3


@dataclass(frozen=True)
class CurveFit:
    """A saturating fit ``y = a - b * f(t; c)`` and the steps it says are enough."""

    kind: str  # "exp" or "power"
    a: float
    b: float
    c: float
    sse: float
    enough_steps: float


def fit_curve(steps: Sequence[int], values: Sequence[float]) -> CurveFit | None:
    """Fit both models to one curve (higher values better); ``None`` if it never improves."""
    t = np.asarray(steps, dtype=float)
    y = np.asarray(values, dtype=float)
    keep = (t > 0) & np.isfinite(y)  # a step-0 point has no place in t^-c
    t, y = t[keep], y[keep]
    if len(t) < _MIN_POINTS or np.ptp(y) <= 1e-12:
        return None
    fits = []
    scale = float(t.max())
    for kind, rates in (("exp", np.geomspace(0.05 / scale, 50.0 / scale, 80)),
                        ("power", np.linspace(0.05, 3.0, 60))):
        for c in rates:
            f = np.exp(-c * t) if kind == "exp" else t ** (-c)
            design = np.stack([np.ones_like(t), -f], axis=1)
            if not np.all(np.isfinite(design)):
                continue
            try:
                (a, b), *_ = np.linalg.lstsq(design, y, rcond=None)
            except np.linalg.LinAlgError:
                continue
            if b <= 0:
                continue  # not saturating upward
            sse = float(np.sum((design @ np.array([a, b]) - y) ** 2))
            if kind == "exp":
                enough = math.log(1 / (1 - TARGET)) / c
            else:
                enough = float(t[0]) * (1 / (1 - TARGET)) ** (1 / c)
            fits.append(CurveFit(kind, float(a), float(b), float(c), sse, enough))
    return min(fits, key=lambda fit: (fit.sse, fit.kind)) if fits else None


def budget_from_curves(replies: Sequence[ClientReply], eval_every: int, robust: bool = True,
                       cap: int | None = None) -> int | None:
    """The enough-step count for these replies' curves, or ``None`` without evidence;
    never above ``cap`` (the largest budget the meta-recipe allows)."""
    enough, weights = [], []
    covered = 0
    for reply, weight in zip(replies, client_weights(replies, robust), strict=True):
        ev = reply.recipe.evidence
        if ev is None or ev.diverged:  # a curve that blew up says nothing of saturation
            continue
        losses = [p.val_loss for p in ev.curve]
        learning = ev.curve[:losses.index(min(losses)) + 1]
        fit = fit_curve([p.step for p in learning], [-p.val_loss for p in learning])
        if fit is None:
            continue
        covered = max(covered, ev.curve[-1].step)
        enough.append(fit.enough_steps)
        weights.append(weight)
    if not enough:
        return None
    wanted = math.ceil(weighted_quantile(enough, weights, QUANTILE) / eval_every) * eval_every
    # Clips round down: past what the evidence covers (x1.5) or the cap, never up.
    limit = math.floor(EXTRAPOLATION * covered / eval_every) * eval_every
    if cap is not None:
        limit = min(limit, cap)
    return int(max(min(eval_every, cap or eval_every), min(wanted, limit)))
