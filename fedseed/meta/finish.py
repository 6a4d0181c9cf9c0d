"""The last step every aggregator shares: turn a recommended configuration into the
next meta-recipe (budget from curves, warm start, portfolio, lineage)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fedseed.meta.base import ClientReply, Options
from fedseed.meta.budget import budget_from_curves
from fedseed.meta.warm import pooled_second_moments
from fedseed.recipe.evidence import Lineage
from fedseed.recipe.model import Recipe
from fedseed.recipe.overrides import apply_assignment
from fedseed.recipe.portfolio import Portfolio
from fedseed.recipe.search import Choice, LogUniform, Scalar, SearchPath, SearchSpace, Uniform


def largest_budget(meta: Recipe) -> int:
    """The largest ``max_steps`` the meta-recipe allows: its search space's top budget,
    or its own budget when the budget is not searched (``--max-steps`` fixes it)."""
    dist = meta.search_space.params.get("budget.max_steps") if meta.search_space else None
    if isinstance(dist, Choice):
        return int(max(v for v in dist.values if isinstance(v, (int, float))))
    if isinstance(dist, (LogUniform, Uniform)):
        return int(dist.high)
    return meta.budget.max_steps


def next_meta(meta: Recipe, recommended: Mapping[str, Scalar] | Mapping[SearchPath, Scalar], *,
              replies: Sequence[ClientReply], budget_evidence: Sequence[ClientReply],
              portfolio: Portfolio | None,
              search_space: SearchSpace | None, round_: int, method: str,
              options: Options, kept: Sequence[ClientReply] | None = None) -> Recipe:
    """``meta`` running ``recommended``, with the next round's portfolio and lineage.

    ``replies`` are every client recipe the round accepted (the lineage names them
    all, flagged ones included: they are part of the record). ``budget_evidence`` are
    the curves the budget is fitted on (normally those of the recommended
    configuration); ``kept`` are the replies that passed screening (the warm start
    pools only those).
    """
    nxt = apply_assignment(meta, recommended) if recommended else meta
    if options.budget_from_curves and budget_evidence:
        steps = budget_from_curves(budget_evidence, nxt.budget.eval_every, options.robust,
                                   cap=largest_budget(meta))
        if steps is not None:
            nxt = apply_assignment(nxt, {
                "budget.max_steps": steps,
                "schedule.warmup_steps": min(nxt.schedule.warmup_steps, steps)})
    warm = nxt.warm_start
    if options.warm_start and nxt.optimizer.name != "sgd":
        pool = budget_evidence or (kept if kept is not None else replies)
        warm = pooled_second_moments(pool, options.robust) or warm
    return nxt.model_copy(update={
        "search_space": search_space,
        "portfolio": portfolio,
        "warm_start": warm,
        "evidence": None,
        "lineage": Lineage(parents=sorted({r.digest for r in replies}), round=round_,
                           method=method),
    })
