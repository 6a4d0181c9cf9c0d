"""``fedex``: exponentiated-gradient weights over a set of configurations.

After Khodak et al., "Federated Hyperparameter Tuning: Challenges, Baselines, and
Connections to Weight-Sharing", NeurIPS 2021. The round-0 meta-recipe draws ``m``
configurations from the search space into its portfolio with uniform weights
``theta``. Each round devices are dealt configurations in proportion to ``theta``,
in groups of three (so every result is a median over several devices).
Afterwards, with ``L_j`` configuration j's aggregated validation loss and
``lambda`` the round's baseline (weighted median, or mean, of the configurations'
results), the
importance-weighted gradient ``g_j = share_j (L_j - lambda) / theta_j`` updates
``theta_j <- theta_j exp(-eta g_j)``, with the step
``eta = sqrt(2 log m) / (spread sqrt(r))`` shrinking with rounds ``r`` and scaled by
the round's largest deviation from the baseline. The recommended configuration is
the one with the largest weight. Under ``robust``, a configuration only one client
reported on moves no weight that round (one device cannot steer). A floor keeps
every weight above ``0.1 / m`` so no configuration is abandoned on one noisy round.
A diverged run counts as the round's worst loss in the gradient estimate, and a
configuration that diverged this round is not recommended, whatever its weight.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import replace

from fedseed.meta.base import AggregatorState, ClientReply, Options, assignment_key, draw_candidates
from fedseed.meta.best import require_converged, require_replies
from fedseed.meta.finish import next_meta
from fedseed.meta.robust import (
    score_groups,
    screen,
    weighted_mean,
    weighted_median,
)
from fedseed.recipe.model import Recipe
from fedseed.recipe.portfolio import Candidate, Portfolio
from fedseed.recipe.search import Scalar

#: Devices per dealt configuration: a median over three resists one liar.
GROUP_SIZE = 3


class FedEx:
    """The ``fedex`` aggregator (see the module docstring)."""

    name = "fedex"

    def __init__(self, options: Options = Options(), configs: int = 8) -> None:
        self.options = options
        self.configs = configs

    def prepare(self, meta: Recipe) -> Recipe:
        """Round 0: ``configs`` configurations from the search space, uniform weights.
        The meta-recipe's own configuration is one of them."""
        if meta.search_space is None:
            return meta
        rng = random.Random(self.options.seed)
        own = {p: _current(meta, p) for p in meta.search_space.params}
        drawn = [own, *draw_candidates(meta.search_space, self.configs - 1, rng)]
        unique = list({assignment_key(a): a for a in drawn}.values())
        weight = 1.0 / len(unique)
        candidates = [Candidate(assignment=a, weight=weight) for a in unique]
        candidates[-1] = candidates[-1].model_copy(
            update={"weight": 1.0 - weight * (len(unique) - 1)})
        return meta.model_copy(update={"portfolio": Portfolio(
            method=self.name, group_size=GROUP_SIZE, candidates=candidates)})

    def __call__(self, meta: Recipe, replies: Sequence[ClientReply],
                 state: AggregatorState) -> tuple[Recipe, AggregatorState]:
        """One exponentiated-gradient step on the portfolio's weights."""
        robust = self.options.robust
        screened = screen(replies, robust)
        require_replies(screened.kept, self.name)
        portfolio = meta.portfolio or self.prepare(meta).portfolio
        round_ = state.round + 1
        if portfolio is None:  # no search space: nothing to weigh
            nxt = next_meta(meta, {}, replies=replies, budget_evidence=screened.kept,
                            portfolio=None, search_space=None, round_=round_,
                            method=self.name, options=self.options, kept=screened.kept)
            return nxt, replace(state, round=round_)
        kept = screened.kept
        groups = score_groups(kept, robust)
        require_converged(groups, self.name)
        scores = {assignment_key(g.assignment): g for g in groups}
        # Only confirmed results move weights, set the baseline or scale the step: one
        # unconfirmed extreme claim must neither steer nor freeze the update.
        counted = [g for g in groups if g.supported] or groups
        values, weights = [g.badness for g in counted], [g.weight for g in counted]
        baseline = weighted_median(values, weights) if robust else weighted_mean(values, weights)
        total = sum(g.weight for g in counted)
        spread = max(abs(g.badness - baseline) for g in counted)
        m = len(portfolio.candidates)
        eta = math.sqrt(2 * math.log(max(2, m))) / (max(spread, 1e-12) * math.sqrt(round_))
        theta = []
        for c in portfolio.candidates:
            g = scores.get(assignment_key(c.assignment))
            # An unconfirmed result (one client, under robust) moves no weight.
            step = 0.0 if g is None or g not in counted else \
                (g.weight / total) * (g.badness - baseline) / c.weight
            theta.append(c.weight * math.exp(-min(50.0, max(-50.0, eta * step))))
        theta = _floor([t / sum(theta) for t in theta], 0.1 / m)
        candidates, failed = [], []
        for c, t in zip(portfolio.candidates, theta, strict=True):
            g = scores.get(assignment_key(c.assignment))
            candidates.append(Candidate(assignment=c.assignment, weight=t,
                                        score=c.score if g is None else g.badness))
            failed.append(g is not None and g.diverged)
        best = max(range(m), key=lambda j: (not failed[j], theta[j],
                                            -_or_inf(candidates[j].score)))
        chosen = candidates[best].assignment
        nxt = next_meta(
            meta, chosen, replies=replies,
            budget_evidence=[r for r in kept if assignment_key(r.assignment)
                             == assignment_key(chosen)],
            portfolio=Portfolio(method=self.name, stage=portfolio.stage + 1,
                                group_size=portfolio.group_size, candidates=candidates),
            search_space=meta.search_space, round_=round_, method=self.name,
            options=self.options, kept=screened.kept)
        return nxt, replace(state, round=round_, values={
            "baseline": baseline, "eta": eta, "theta": theta, "flagged": screened.flagged})


def _current(meta: Recipe, path: str) -> Scalar:
    section, _, field = path.partition(".")
    return getattr(getattr(meta, section), field)


def _floor(theta: list[float], floor: float) -> list[float]:
    """The nearest distribution with every weight at least ``floor``: floored weights
    are raised to it and the others scaled down to make room (repeated until none
    falls below)."""
    out = list(theta)
    while True:
        low = [i for i, t in enumerate(out) if t < floor - 1e-15]
        if not low:
            break
        rest = [i for i in range(len(out)) if out[i] >= floor - 1e-15 and i not in low]
        room = 1.0 - floor * (len(out) - len(rest))
        total = sum(out[i] for i in rest)
        for i in range(len(out)):
            out[i] = floor if i not in rest else out[i] * room / total
    out[-1] = 1.0 - sum(out[:-1])  # exact sum for the schema's check
    return out


def _or_inf(score: float | None) -> float:
    """A candidate's score (unscored: worst)."""
    return math.inf if score is None else score
