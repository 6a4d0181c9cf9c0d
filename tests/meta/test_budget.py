"""Budget from curves: saturating fits on known curves, clipping, no-evidence cases."""

from __future__ import annotations

import math

import pytest
from support import synthetic_reply

from fedseed.meta.budget import EXTRAPOLATION, budget_from_curves, fit_curve
from fedseed.recipe.evidence import CurvePoint


def test_exponential_fit_recovers_the_rate():
    steps = list(range(10, 310, 10))
    values = [-(0.2 + 2.0 * math.exp(-0.02 * t)) for t in steps]  # minus a loss
    fit = fit_curve(steps, values)
    assert fit is not None and fit.kind == "exp"
    assert fit.c == pytest.approx(0.02, rel=0.1)
    assert fit.enough_steps == pytest.approx(math.log(50) / 0.02, rel=0.1)


def test_flat_or_short_curves_give_no_fit():
    assert fit_curve([10, 20, 30], [1.0, 1.0, 1.0]) is None
    assert fit_curve([10, 20], [0.0, 1.0]) is None


def _reply_with_loss_curve(rate: float, steps: int, node: int = 0):
    curve = [CurvePoint(step=t, val_loss=0.2 + 2.0 * math.exp(-rate * t), val_metric=0.6)
             for t in range(20, steps + 1, 20)]
    return synthetic_reply({"optimizer.lr": 0.001}, curve[-1].val_loss, node=node,
                           steps=steps, accuracy=0.6, curve=curve)


def test_budget_is_where_most_clients_are_done():
    replies = [_reply_with_loss_curve(0.04, 400, node=i) for i in range(4)]
    budget = budget_from_curves(replies, eval_every=20)
    assert budget is not None and budget % 20 == 0
    assert math.log(50) / 0.04 <= budget <= math.log(50) / 0.04 + 20  # ~98 -> 100


def test_budget_never_extrapolates_far_beyond_the_evidence():
    slow = [_reply_with_loss_curve(0.001, 100, node=i) for i in range(3)]
    # Clipped to 1.5x the 100 steps covered, rounding down to whole evaluations.
    assert budget_from_curves(slow, eval_every=20) == math.floor(EXTRAPOLATION * 100 / 20) * 20
    assert budget_from_curves(slow, eval_every=20, cap=100) == 100  # never past the cap


def test_a_step_zero_point_does_not_break_the_fit():
    curve = [CurvePoint(step=t, val_loss=0.2 + 2.0 * math.exp(-0.03 * t), val_metric=0.6)
             for t in range(0, 201, 20)]
    reply = synthetic_reply({"optimizer.lr": 0.001}, curve[-1].val_loss, steps=200,
                            accuracy=0.6, curve=curve)
    assert budget_from_curves([reply], eval_every=20) is not None


def test_overfitting_tail_is_ignored():
    curve = [CurvePoint(step=t, val_loss=0.2 + 2.0 * math.exp(-0.05 * t) + max(0, t - 200) * 0.01,
                        val_metric=0.6) for t in range(20, 401, 20)]
    reply = synthetic_reply({"optimizer.lr": 0.001}, min(p.val_loss for p in curve), steps=400,
                            accuracy=0.6, curve=curve)
    budget = budget_from_curves([reply], eval_every=20)
    assert budget is not None and budget <= 120  # ln(50)/0.05 ~ 78, not the 400 it ran
