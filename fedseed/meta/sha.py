"""``sha``: successive halving over a population of configurations.

After Jamieson & Talwalkar, "Non-stochastic Best Arm Identification and
Hyperparameter Optimization", AISTATS 2016 (and Hyperband, Li et al., JMLR 2018).
The round-0 meta-recipe holds a population of configurations (4 by default, each
dealt to groups of at least three devices), all at a small step
budget (the largest budget divided by ``eta`` once per halving still to come).
Each round devices run the population, each configuration on several devices; the
best ``1/eta`` by their partial learning curves (the validation result at the rung's
budget, aggregated over devices) survive, and the survivors' budget is multiplied by
``eta``. When one configuration is left it runs at the full budget and stays. A
configuration whose runs diverged never survives, whatever the halving would keep.
The search space's ``budget.max_steps`` is what the rungs control; every other
searched path is drawn for the population.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import replace

from fedseed.errors import AggregationError
from fedseed.meta.base import AggregatorState, ClientReply, Options, assignment_key, draw_candidates
from fedseed.meta.best import require_replies
from fedseed.meta.finish import largest_budget, next_meta
from fedseed.meta.robust import score_groups, screen
from fedseed.recipe.model import Recipe
from fedseed.recipe.portfolio import Candidate, Portfolio
from fedseed.recipe.search import Scalar, SearchPath

_BUDGET: SearchPath = "budget.max_steps"


#: Devices per dealt configuration: a median over three resists one liar.
GROUP_SIZE = 3


class SuccessiveHalving:
    """The ``sha`` aggregator (see the module docstring)."""

    name = "sha"

    def __init__(self, options: Options = Options(), population: int = 4, eta: int = 2) -> None:
        self.options = options
        self.population = population
        self.eta = eta

    def max_budget(self, meta: Recipe) -> int:
        """The largest step budget the search space allows (the recipe's own if none)."""
        return largest_budget(meta)

    def _at_budget(self, meta: Recipe, assignment: dict[SearchPath, Scalar], steps: int
                   ) -> dict[SearchPath, Scalar]:
        return {**assignment, _BUDGET: steps,
                "budget.eval_every": min(meta.budget.eval_every, steps),
                "schedule.warmup_steps": min(meta.schedule.warmup_steps, steps)}

    def prepare(self, meta: Recipe) -> Recipe:
        """Round 0: the population at the first rung's budget."""
        if meta.search_space is None:
            return meta
        rungs, size = 0, 1
        while size < self.population:  # halvings until one is left, in integers
            size *= self.eta
            rungs += 1
        steps = max(1, self.max_budget(meta) // self.eta ** rungs)
        steps = max(steps, min(meta.budget.eval_every, self.max_budget(meta)))
        rng = random.Random(self.options.seed)
        drawn = draw_candidates(meta.search_space, self.population, rng, skip=(_BUDGET,))
        population = [self._at_budget(meta, a, steps) for a in drawn]
        weight = 1.0 / len(population)
        candidates = [Candidate(assignment=a, weight=weight) for a in population]
        candidates[-1] = candidates[-1].model_copy(
            update={"weight": 1.0 - weight * (len(population) - 1)})
        return meta.model_copy(update={"portfolio": Portfolio(
            method=self.name, stage=0, group_size=GROUP_SIZE, candidates=candidates)})

    def __call__(self, meta: Recipe, replies: Sequence[ClientReply],
                 state: AggregatorState) -> tuple[Recipe, AggregatorState]:
        """Keep the best ``1/eta`` of the population and raise their budget."""
        screened = screen(replies, self.options.robust)
        require_replies(screened.kept, self.name)
        portfolio = meta.portfolio or self.prepare(meta).portfolio
        round_ = state.round + 1
        scores = {assignment_key(g.assignment): g
                  for g in score_groups(screened.kept, self.options.robust)}
        if portfolio is None:
            nxt = next_meta(meta, {}, replies=replies, budget_evidence=screened.kept,
                            portfolio=None, search_space=None, round_=round_,
                            method=self.name, options=self.options, kept=screened.kept)
            return nxt, replace(state, round=round_)
        # Unconfirmed results (one device, under robust) rank after confirmed ones, and
        # diverged ones are out: they take the places the halving cuts first.
        keyed = sorted(((assignment_key(c.assignment), c) for c in portfolio.candidates),
                       key=lambda kc: (not scores[kc[0]].supported if kc[0] in scores else True,
                                       scores[kc[0]].badness if kc[0] in scores else math.inf,
                                       kc[0]))
        ranked = [c for _, c in keyed]
        alive = [c for k, c in keyed if not (k in scores and scores[k].diverged)]
        if not alive:
            raise AggregationError(f"{self.name}: every configuration of the population "
                                   "diverged (its loss went non-finite); keeping the current "
                                   "meta-recipe (narrow the search space, a lower learning "
                                   "rate first)")
        best = alive[0]
        best_key = assignment_key(best.assignment)
        if best_key not in scores:  # nothing that is left ran: explore again
            survivors, steps = alive, int(best.assignment.get(_BUDGET, 0) or 0)
        else:
            keep = max(1, math.ceil(len(ranked) / self.eta)) if len(ranked) > 1 else 1
            survivors = alive[:keep]
            current = int(best.assignment.get(_BUDGET) or meta.budget.max_steps)
            steps = min(self.max_budget(meta), current * self.eta)
        next_candidates = [
            Candidate(assignment=self._at_budget(meta, {k: v for k, v in c.assignment.items()
                                                        if k not in (_BUDGET,)}, steps),
                      weight=1.0 / len(survivors),
                      score=scores[k].badness if (k := assignment_key(c.assignment))
                      in scores else c.score)
            for c in survivors]
        next_candidates[-1] = next_candidates[-1].model_copy(update={
            "weight": 1.0 - sum(c.weight for c in next_candidates[:-1])})
        # The recommendation: the rung's winner at the budget it earned next.
        recommended = next_candidates[0].assignment
        nxt = next_meta(
            meta, recommended, replies=replies,
            budget_evidence=[r for r in screened.kept
                             if assignment_key(r.assignment) == best_key],
            portfolio=Portfolio(method=self.name, stage=portfolio.stage + 1,
                                group_size=portfolio.group_size, candidates=next_candidates),
            search_space=meta.search_space, round_=round_, method=self.name,
            options=self.options, kept=screened.kept)
        return nxt, replace(state, round=round_, values={
            "rung_steps": steps, "survivors": len(next_candidates), "flagged": screened.flagged})
