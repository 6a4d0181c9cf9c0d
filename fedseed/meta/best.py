"""``best``: keep the explored configuration with the best sample-weighted validation
metric, and narrow the search space around it.

The simplest useful meta-recipe step (the meta-recipe algorithms proper, FedEx, FLoRA
and successive halving, plug in behind the same interface). Each round's clients try
configurations drawn from the search space; configurations tried by several clients
are scored by the sample-weighted mean of their final validation metric. The winner
becomes the meta-recipe's own configuration, and every range of the search space is
halved (in log space for log-uniform ranges) around the winner, so later rounds
refine rather than re-explore.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from fedseed.errors import AggregationError
from fedseed.meta.base import AggregatorState, ClientReply
from fedseed.recipe.evidence import Lineage
from fedseed.recipe.model import Recipe
from fedseed.recipe.search import Choice, LogUniform, Scalar, SearchSpace, Uniform, apply_assignment


def score_assignments(replies: Sequence[ClientReply], higher_is_better: bool
                      ) -> list[tuple[float, dict[str, Scalar], int]]:
    """(sample-weighted mean metric, assignment, clients) per distinct assignment, best first."""
    groups: dict[tuple[tuple[str, str], ...], list[ClientReply]] = {}
    for reply in replies:
        key = tuple(sorted((k, repr(v)) for k, v in reply.assignment.items()))
        groups.setdefault(key, []).append(reply)
    scored = []
    for members in groups.values():
        total = sum(max(1, r.weight) for r in members)
        metric = sum(max(1, r.weight) * _val_metric(r) for r in members) / total
        scored.append((metric, dict(members[0].assignment), len(members)))
    scored.sort(key=lambda item: item[0], reverse=higher_is_better)
    return scored


def _val_metric(reply: ClientReply) -> float:
    evidence = reply.recipe.evidence
    assert evidence is not None  # the server rejects replies without evidence
    return evidence.final.val_metric


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


class Best:
    """The ``best`` aggregator (see the module docstring)."""

    name = "best"

    def __call__(self, meta: Recipe, replies: Sequence[ClientReply],
                 state: AggregatorState) -> tuple[Recipe, AggregatorState]:
        """Aggregate one round of accepted client recipes into the next meta-recipe."""
        if not replies:
            raise AggregationError("no accepted client recipes to aggregate; keep the "
                                   "current meta-recipe and run another round")
        scored = score_assignments(replies, meta.task.higher_is_better)
        metric, winner, clients = scored[0]
        next_meta = apply_assignment(meta, winner) if winner else meta
        space = narrow(meta.search_space, winner) if meta.search_space else None
        round_ = state.round + 1
        next_meta = next_meta.model_copy(update={
            "search_space": space,
            "evidence": None,
            "lineage": Lineage(parents=sorted({r.digest for r in replies}), round=round_,
                               method=self.name),
        })
        values = {"best_metric": metric, "best_assignment": winner, "best_clients": clients}
        return next_meta, replace(state, round=round_, values=values)
