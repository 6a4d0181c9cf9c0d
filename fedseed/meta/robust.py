"""Robust aggregation: statistics a minority of lying clients cannot drag far, and
checks that catch client recipes whose claims contradict themselves.

Every aggregator scores configurations through :func:`score_groups`. With
``robust=True`` (the default) flagged replies are left out, each client's weight
is capped at the round's median (:data:`WEIGHT_CAP`; a client cannot buy influence
by claiming a million examples), a configuration's score is the upper
weighted median of its clients' losses instead of the weighted mean, and a
configuration needs :data:`MIN_SUPPORT` clients behind it to be recommended.

A diverged reply (``evidence.diverged``: its loss went non-finite) counts as the
round's worst outcome, whatever it reports (:func:`losses`), and a configuration whose
score is a diverged one is never recommended (``GroupScore.diverged``).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fedseed.meta.base import ClientReply, assignment_key
from fedseed.recipe.evidence import (
    MAX_MAGNITUDE,
    WORST_LOSS,
    CurvePoint,
    FinalMetrics,
    worst_metric,
)
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
    = exp(loss) >= 1); an accuracy is a whole number of validation examples. A
    diverged run's final metrics and last curve point are instead the worst values,
    at the step it stopped (the points before it are checked as any curve's).
    """
    ev = recipe.evidence
    if ev is None:
        return ["no evidence"]
    if ev.release != "exact":
        # Noise makes no claim checkable; under privacy, clipping is what bounds how
        # far any reply, honest or not, can move the aggregate.
        return []
    problems: list[str] = []
    curve = ev.curve
    steps = [p.step for p in curve]
    if steps != sorted(set(steps)):
        problems.append("curve steps are not increasing")
    if steps and (steps[-1] > ev.steps or ev.steps > recipe.budget.max_steps):
        problems.append(f"curve runs to step {steps[-1]} but {ev.steps} steps ran "
                        f"(budget {recipe.budget.max_steps})")
    measured: list[CurvePoint | FinalMetrics] = [*curve]
    if ev.diverged:
        problems += _diverged_end(recipe)
        measured.pop()  # the worst values, not a measurement
    else:
        measured.append(ev.final)
    metric = recipe.task.metric
    values = [p.val_metric for p in measured]
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
        for point in measured:
            expected = math.exp(min(point.val_loss, 700))
            if abs(point.val_metric - expected) > 1e-3 * expected + 1e-3:
                problems.append("perplexity is not exp(validation loss)")
                break
    if not ev.diverged:
        problems += _final_on_curve(recipe)
    return problems


def _final_on_curve(recipe: Recipe) -> list[str]:
    """Whether the final metrics are the curve's at ``best_step`` (its best, under
    early stopping)."""
    ev = recipe.evidence
    assert ev is not None
    problems = []
    curve, claimed = ev.curve, ev.final
    higher = recipe.task.higher_is_better
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


def _diverged_end(recipe: Recipe) -> list[str]:
    """Whether a diverged run ends as :func:`fedseed.recipe.evidence.diverged_point`
    and ``diverged_final`` say: the worst loss and metric, at the step it stopped."""
    ev = recipe.evidence
    assert ev is not None
    worst = worst_metric(recipe.task.higher_is_better)
    last, final = ev.curve[-1], ev.final
    problems = []
    if {(last.val_loss, last.val_metric), (final.val_loss, final.val_metric)} != \
            {(WORST_LOSS, worst)}:
        problems.append(f"diverged, but its final metrics or last curve point are not the "
                        f"worst ({WORST_LOSS:g}, {worst:g})")
    if not last.step == ev.best_step == ev.steps:
        problems.append(f"diverged at step {ev.steps}, but its curve ends at step "
                        f"{last.step} (best_step {ev.best_step})")
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


def robust_mean(vectors: np.ndarray, weights: Sequence[float], robust: bool
                ) -> tuple[np.ndarray, int]:
    """The weighted mean of clients' coefficient vectors; under ``robust`` each is
    first clipped to the median norm (no single reply moves the shared model further
    than a typical one). Returns the mean and how many vectors were clipped."""
    vectors = np.asarray(vectors, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    clipped = 0
    if robust and len(vectors) > 1:
        norms = np.linalg.norm(vectors, axis=1)
        bound = float(np.median(norms))
        scale = np.where(norms > bound, bound / np.maximum(norms, 1e-30), 1.0)
        clipped = int((scale < 1.0).sum())
        vectors = vectors * scale[:, None]
    return (w[:, None] * vectors).sum(axis=0) / w.sum(), clipped


def badness(reply: ClientReply) -> float:
    """What aggregators minimise: the client's final validation loss.

    The loss rather than the metric: an accuracy on a few dozen validation
    examples is coarse and saturates at 1.0 on devices holding few classes, so it
    cannot tell configurations apart; the loss keeps ranking them (for language
    models the two agree: perplexity is exp(loss)). A diverged reply reports the
    schema's bound here; aggregators score it with :func:`losses` instead.
    """
    ev = reply.recipe.evidence
    assert ev is not None  # the server rejects replies without evidence
    return ev.final.val_loss


def diverged(reply: ClientReply) -> bool:
    """Whether the reply's run diverged (its loss went non-finite or out of range)."""
    return reply.recipe.evidence is not None and reply.recipe.evidence.diverged


def diverged_loss(finite: Sequence[float]) -> float:
    """The loss a diverged reply counts as, given the finite losses it is compared with:
    worse than the worst of them by their spread (when they all agree: by a tenth of
    the worst, and at least 1e-3), so it always ranks last.

    Not the reported value (the schema's bound, 1e12): in FedEx's gradient estimate,
    scaled by the round's largest deviation, that sentinel would freeze every other
    configuration's weight, and in FLoRA's least squares it would be the whole fit.
    Relative to the round, the worst outcome stays the worst without swamping the
    arithmetic. With nothing finite to compare with it is the bound itself.
    """
    if not finite:
        return WORST_LOSS
    top, spread = max(finite), max(finite) - min(finite)
    return min(MAX_MAGNITUDE, top + (spread if spread > 0 else max(abs(top) / 10, 1e-3)))


def losses(replies: Sequence[ClientReply]) -> list[float]:
    """Each reply's loss for aggregation: :func:`badness`, or :func:`diverged_loss` of
    the others' for a diverged reply. :func:`score_groups` (so ``best``, ``fedex`` and
    ``sha``) scores replies through this; ``flora`` applies :func:`diverged_loss` to
    its pool of pairs."""
    finite = [badness(r) for r in replies if not diverged(r)]
    worst = diverged_loss(finite)
    return [worst if diverged(r) else badness(r) for r in replies]


@dataclass(frozen=True)
class GroupScore:
    """One configuration's aggregated result in a round."""

    assignment: dict[str, Scalar]
    badness: float  # lower is better
    weight: float
    clients: int
    supported: bool = True  # confirmed by enough clients to be recommended
    diverged: bool = False  # its score is a diverged run's: never to be recommended


def score_groups(replies: Sequence[ClientReply], robust: bool) -> list[GroupScore]:
    """Aggregate replies per distinct assignment, best (lowest badness) first.

    Under ``robust`` a configuration's score is the upper weighted median of its
    clients' losses, and a configuration only one client reports on ranks after
    every configuration two or more clients confirmed (when there is one): a single
    device can then never decide the recommendation, however good its claim.
    Ties go to the assignment with more weight, then to its canonical text, so the
    order replies arrived in never decides.

    Diverged replies count as the round's worst loss (:func:`losses`). A configuration
    is ``diverged``, and ranks after every other, when its score is a diverged run's:
    under ``robust`` when diverged replies hold at least half its weight (its upper
    median is then one), otherwise when any of its replies diverged (the mean trusts
    each reply).
    """
    weights = client_weights(replies, robust)
    groups: dict[str, list[tuple[float, float, bool]]] = {}
    assignments: dict[str, dict[str, Scalar]] = {}
    for reply, weight, loss in zip(replies, weights, losses(replies), strict=True):
        key = assignment_key(reply.assignment)
        groups.setdefault(key, []).append((loss, weight, diverged(reply)))
        assignments.setdefault(key, dict(reply.assignment))
    support = min(MIN_SUPPORT, max((len(m) for m in groups.values()), default=0))
    scores = []
    for key, members in groups.items():
        values, ws = [v for v, _, _ in members], [w for _, w, _ in members]
        value = upper_weighted_median(values, ws) if robust else weighted_mean(values, ws)
        bad = sum(w for _, w, d in members if d)
        gone = bad >= sum(ws) / 2 if robust else bad > 0
        supported = not robust or len(members) >= support
        scores.append((gone, not supported, value, -sum(ws), key,
                       GroupScore(assignments[key], value, sum(ws), len(members),
                                  supported, gone)))
    scores.sort(key=lambda item: item[:5])
    return [s[5] for s in scores]
