"""Robust aggregation: statistics a minority of lying clients cannot drag far, and
checks that catch client recipes whose claims contradict themselves.

Every aggregator scores configurations through :func:`score_groups`. With
``robust=True`` (the default) flagged replies are left out, each client's weight
is capped at the round's median (:data:`WEIGHT_CAP`; a client cannot buy influence
by claiming a million examples), a configuration's score is the upper
weighted median of its clients' losses instead of the weighted mean, and a
configuration needs :data:`MIN_SUPPORT` clients behind it to be recommended.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from fedseed.meta.base import ClientReply, assignment_key
from fedseed.recipe.model import Recipe
from fedseed.recipe.search import Scalar

#: Under robust aggregation a client counts for at most the round's median example
#: count: with a cap above 1, one inflated claim outweighs an honest client and
#: decides a group of two or three.
WEIGHT_CAP = 1.0
#: Clients that must report on a configuration before (robust) aggregation may
#: recommend it, when any configuration has that many.
MIN_SUPPORT = 2
#: Tolerance for metrics written with 6 significant digits.
_TOL = 2e-5


def weighted_quantile(values: Sequence[float], weights: Sequence[float], q: float) -> float:
    """The smallest value holding at least ``q`` of the total weight."""
    if not values:
        raise ValueError("weighted quantile of nothing")
    pairs = sorted(zip(values, weights, strict=True))
    target = q * sum(w for _, w in pairs)
    running = 0.0
    for value, weight in pairs:
        running += weight
        if running >= target - 1e-12:
            return value
    return pairs[-1][0]


def weighted_median(values: Sequence[float], weights: Sequence[float]) -> float:
    """The lower weighted median: the smallest value holding half the total weight."""
    return weighted_quantile(values, weights, 0.5)


def upper_weighted_median(values: Sequence[float], weights: Sequence[float]) -> float:
    """The upper weighted median: the largest value with half the total weight at or
    above it. For a loss it is the pessimistic median: moving it down takes a strict
    majority of the weight, a tie is not enough."""
    return -weighted_median([-v for v in values], weights)


def weighted_mean(values: Sequence[float], weights: Sequence[float]) -> float:
    """Sample-weighted mean (equal weights when they are all zero)."""
    total = sum(weights)
    if total <= 0:
        return statistics.fmean(values)
    return sum(v * w for v, w in zip(values, weights, strict=True)) / total


def _close(a: float, b: float) -> bool:
    """Equal up to the 6 significant digits evidence is written with."""
    return abs(a - b) <= 10 * _TOL * max(1.0, abs(a), abs(b))


def inconsistencies(recipe: Recipe) -> list[str]:
    """What in a client recipe's evidence contradicts itself or the task (empty: none).

    Checked: the final validation loss and metric are those of its curve's point at
    ``best_step``, and that point is the curve's best under early stopping (when the
    curve was thinned past it: the final metric is the curve's best or last); curve
    steps increase and stay within the steps
    run and the budget; metrics lie in their range (accuracy in [0, 1], perplexity
    = exp(loss) >= 1); an accuracy is a whole number of validation examples.
    """
    ev = recipe.evidence
    if ev is None:
        return ["no evidence"]
    problems: list[str] = []
    curve = ev.curve
    steps = [p.step for p in curve]
    if steps != sorted(set(steps)):
        problems.append("curve steps are not increasing")
    if steps and (steps[-1] > ev.steps or ev.steps > recipe.budget.max_steps):
        problems.append(f"curve runs to step {steps[-1]} but {ev.steps} steps ran "
                        f"(budget {recipe.budget.max_steps})")
    metric = recipe.task.metric
    values = [p.val_metric for p in curve] + [ev.final.val_metric]
    if metric == "accuracy":
        if any(not -_TOL <= v <= 1 + _TOL for v in values):
            problems.append("an accuracy outside [0, 1]")
        n_val = ev.num_examples.validation
        count = ev.final.val_metric * n_val
        if n_val and abs(count - round(count)) > max(1e-3, n_val * 1e-5):
            problems.append(f"validation accuracy {ev.final.val_metric} is not a whole "
                            f"number of {n_val} examples")
    if metric == "perplexity":
        if any(v < 1 - _TOL for v in values):
            problems.append("a perplexity below 1")
        for point in [*curve, ev.final]:
            expected = math.exp(min(point.val_loss, 700))
            if abs(point.val_metric - expected) > 1e-3 * expected + 1e-3:
                problems.append("perplexity is not exp(validation loss)")
                break
    higher = recipe.task.higher_is_better
    claimed = ev.final
    at_best = next((p for p in curve if p.step == ev.best_step), None)
    if at_best is None:  # a thinned curve may have dropped it: compare with its best
        best = (max if higher else min)(p.val_metric for p in curve)
        ends_on = best if recipe.budget.early_stopping else curve[-1].val_metric
        if not _close(claimed.val_metric, ends_on):
            problems.append(f"final validation metric {claimed.val_metric} is not on its "
                            f"curve (expected {ends_on})")
    else:
        if not (_close(claimed.val_metric, at_best.val_metric)
                and _close(claimed.val_loss, at_best.val_loss)):
            problems.append(f"final validation loss/metric ({claimed.val_loss}, "
                            f"{claimed.val_metric}) are not its curve's at best_step "
                            f"{ev.best_step} ({at_best.val_loss}, {at_best.val_metric})")
        better = [p for p in curve if (p.val_metric > at_best.val_metric + _TOL if higher
                                       else p.val_metric < at_best.val_metric - _TOL)]
        if recipe.budget.early_stopping and better:
            problems.append(f"best_step {ev.best_step} is not its curve's best point")
    return problems


@dataclass(frozen=True)
class Screened:
    """Replies split into those aggregated and those flagged (with why)."""

    kept: list[ClientReply]
    flagged: dict[str, list[str]]  # digest -> problems


def screen(replies: Sequence[ClientReply], robust: bool) -> Screened:
    """Leave out self-contradicting replies when ``robust`` (always report them)."""
    kept, flagged = [], {}
    for reply in replies:
        problems = inconsistencies(reply.recipe)
        if problems:
            flagged[reply.digest] = problems
        if not problems or not robust:
            kept.append(reply)
    return Screened(kept=kept, flagged=flagged)


def client_weights(replies: Sequence[ClientReply], robust: bool, cap: float = WEIGHT_CAP
                   ) -> list[float]:
    """Each reply's weight: its example count, capped at ``cap`` times the median."""
    raw = [float(max(1, r.weight)) for r in replies]
    if not robust or not raw:
        return raw
    cap = cap * statistics.median(raw)
    return [min(w, cap) for w in raw]


def badness(reply: ClientReply) -> float:
    """What aggregators minimise: the client's final validation loss.

    The loss rather than the metric: an accuracy on a few dozen validation
    examples is coarse and saturates at 1.0 on devices holding few classes, so it
    cannot tell configurations apart; the loss keeps ranking them (for language
    models the two agree: perplexity is exp(loss)).
    """
    ev = reply.recipe.evidence
    assert ev is not None  # the server rejects replies without evidence
    return ev.final.val_loss


@dataclass(frozen=True)
class GroupScore:
    """One configuration's aggregated result in a round."""

    assignment: dict[str, Scalar]
    badness: float  # lower is better
    weight: float
    clients: int
    supported: bool = True  # confirmed by enough clients to be recommended


def score_groups(replies: Sequence[ClientReply], robust: bool) -> list[GroupScore]:
    """Aggregate replies per distinct assignment, best (lowest badness) first.

    Under ``robust`` a configuration's score is the upper weighted median of its
    clients' losses, and a configuration only one client reports on ranks after
    every configuration two or more clients confirmed (when there is one): a single
    device can then never decide the recommendation, however good its claim.
    Ties go to the assignment with more weight, then to its canonical text, so the
    order replies arrived in never decides.
    """
    weights = client_weights(replies, robust)
    groups: dict[str, list[tuple[ClientReply, float]]] = {}
    for reply, weight in zip(replies, weights, strict=True):
        groups.setdefault(assignment_key(reply.assignment), []).append((reply, weight))
    support = min(MIN_SUPPORT, max((len(m) for m in groups.values()), default=0))
    scores = []
    for key, members in groups.items():
        values = [badness(r) for r, _ in members]
        ws = [w for _, w in members]
        value = upper_weighted_median(values, ws) if robust else weighted_mean(values, ws)
        supported = not robust or len(members) >= support
        scores.append((not supported, value, -sum(ws), key,
                       GroupScore(dict(members[0][0].assignment), value, sum(ws), len(members),
                                  supported)))
    scores.sort(key=lambda item: item[:4])
    return [s[4] for s in scores]
