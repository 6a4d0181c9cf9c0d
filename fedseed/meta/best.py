"""``best``: keep the explored configuration with the best validation metric, and
narrow the search space around it.

The simplest useful meta-recipe step. Each round's clients try configurations
drawn from the search space; configurations tried by several clients are scored
together (weighted median under ``robust``, weighted mean otherwise). The winner
becomes the meta-recipe's own configuration, and every range of the search space is
halved (in log space for log-uniform ranges) around it, so later rounds refine
rather than re-explore. A configuration whose runs diverged never wins.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from fedseed.errors import AggregationError
from fedseed.meta.base import AggregatorState, ClientReply, Options, assignment_key
from fedseed.meta.finish import next_meta
from fedseed.meta.robust import GroupScore, score_groups, screen
from fedseed.recipe.model import Recipe
from fedseed.recipe.search import Choice, LogUniform, Scalar, SearchSpace, Uniform


def narrow(space: SearchSpace, center: dict[str, Scalar]) -> SearchSpace:
    """Halve every range of ``space`` around ``center``, within the old bounds."""
    params: dict[str, Any] = {}
    for path, dist in space.params.items():
        value = center.get(path)
        if isinstance(dist, LogUniform) and isinstance(value, (int, float)) and value > 0:
            half = math.log(dist.high / dist.low) / 4
            low = max(dist.low, value * math.exp(-half))
            high = min(dist.high, value * math.exp(half))
            params[path] = dist.model_copy(update={"low": low, "high": max(low, high)})
        elif isinstance(dist, Uniform) and isinstance(value, (int, float)):
            half = (dist.high - dist.low) / 4
            low, high = max(dist.low, value - half), min(dist.high, value + half)
            params[path] = dist.model_copy(update={"low": low, "high": max(low, high)})
        elif isinstance(dist, Choice) and value in dist.values and len(dist.values) > 2:
            i = dist.values.index(value)
            keep = dist.values[max(0, i - 1): i + 2]
            params[path] = dist.model_copy(update={"values": keep})
        else:
            params[path] = dist
    return SearchSpace.model_validate({"params": params})


def require_replies(replies: Sequence[ClientReply], name: str) -> None:
    """Refuse an empty round: the server then keeps the current meta-recipe."""
    if not replies:
        raise AggregationError(f"{name}: no usable client recipes to aggregate; keeping the "
                               "current meta-recipe (run another round)")


def require_converged(groups: Sequence[GroupScore], name: str) -> None:
    """Refuse a round in which every configuration diverged: nothing can be recommended,
    and the server keeps the current meta-recipe."""
    if all(g.diverged for g in groups):
        raise AggregationError(f"{name}: every configuration diverged this round (its loss "
                               "went non-finite); keeping the current meta-recipe (narrow the "
                               "search space, a lower learning rate first)")


class Best:
    """The ``best`` aggregator (see the module docstring)."""

    name = "best"

    def __init__(self, options: Options = Options()) -> None:
        self.options = options

    def prepare(self, meta: Recipe) -> Recipe:
        """``best`` explores the search space directly: nothing to add."""
        return meta

    def __call__(self, meta: Recipe, replies: Sequence[ClientReply],
                 state: AggregatorState) -> tuple[Recipe, AggregatorState]:
        """Aggregate one round of accepted client recipes into the next meta-recipe."""
        screened = screen(replies, self.options.robust)
        require_replies(screened.kept, self.name)
        groups = score_groups(screened.kept, self.options.robust)
        require_converged(groups, self.name)
        winner = groups[0]  # diverged configurations rank last
        space = narrow(meta.search_space, winner.assignment) if meta.search_space else None
        key = assignment_key(winner.assignment)
        round_ = state.round + 1
        nxt = next_meta(
            meta, winner.assignment, replies=replies,
            budget_evidence=[r for r in screened.kept if assignment_key(r.assignment) == key],
            portfolio=None, search_space=space, round_=round_, method=self.name,
            options=self.options, kept=screened.kept)
        values = {"best_val_loss": winner.badness, "best_assignment": winner.assignment,
                  "best_clients": winner.clients, "flagged": screened.flagged}
        return nxt, replace(state, round=round_, values=values)
