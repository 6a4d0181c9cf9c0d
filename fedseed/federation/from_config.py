"""A :class:`~fedseed.federation.strategy.FedseedStrategy`'s collaborators from a
:class:`~fedseed.federation.config.FederationConfig` (the run config, or
``fedseed simulate``'s options): which aggregator, which round settings, which
starting recipe. The only place where ``mode`` picks an aggregator: the trajectory
methods are aggregators like the others, so the round loop has no mode branch.
"""

from __future__ import annotations

from fedseed.federation.config import FederationConfig
from fedseed.federation.strategy import RoundSettings
from fedseed.meta import TrajectoryAggregator, get_aggregator
from fedseed.meta.base import Aggregator, Options
from fedseed.meta.projection import ProjectionAggregator
from fedseed.meta.tasks import parse_task_labels
from fedseed.provenance.resolve import resolve_trusted
from fedseed.provenance.trust import TrustStore
from fedseed.recipe.model import Recipe
from fedseed.recipe.overrides import with_step_budget
from fedseed.trajectory.projection import DENSE_LIMIT


def aggregator_for(cfg: FederationConfig) -> Aggregator:
    """The aggregator ``cfg`` names: a meta-recipe aggregator in mode ``recipes``,
    zeroth-order seeds (FedKSeed) or first-order projection (Ferret) in ``trajectory``."""
    options = Options(robust=cfg.robust, budget_from_curves=cfg.budget_from_curves,
                      warm_start=cfg.warm_start, seed=cfg.seed)
    if cfg.mode == "recipes":
        return get_aggregator(cfg.aggregator, options)
    if cfg.trajectory_method == "first-order":
        return ProjectionAggregator(options, total_k=cfg.projection_k,
                                    server_lr=cfg.projection_lr, dtype=cfg.projection_dtype,
                                    dense_limit=0 if cfg.projection_basis == "count-sketch"
                                    else DENSE_LIMIT)
    return TrajectoryAggregator(options, pool_size=cfg.pool_size, steps=cfg.zo_steps,
                                lr=cfg.zo_lr, epsilon=cfg.zo_epsilon,
                                seeds_per_step=cfg.seeds_per_step, sampling=cfg.sampling,
                                server_lr=cfg.server_lr)


def round_settings(cfg: FederationConfig) -> RoundSettings:
    """How ``cfg``'s rounds run."""
    return RoundSettings(num_rounds=cfg.num_rounds, fraction=cfg.fraction,
                         min_nodes=cfg.min_nodes, min_replies=cfg.min_replies,
                         timeout=cfg.timeout, quorum=cfg.quorum, grace=cfg.grace,
                         client_trust=cfg.client_trust, seed=cfg.seed,
                         final_personalization=cfg.final_personalization,
                         task_labels=parse_task_labels(cfg.task_labels),
                         privacy=cfg.privacy_settings())


def starting_recipe(cfg: FederationConfig, trust: TrustStore) -> Recipe:
    """The recipe ``cfg`` names (a signed one only once it verified under ``trust``),
    with ``max_steps`` as every client's budget when set."""
    named = resolve_trusted(cfg.recipe, trust).recipe
    # The override is the budget: no assignment may explore past it.
    return with_step_budget(named, cfg.max_steps) if cfg.max_steps else named


__all__ = ["aggregator_for", "round_settings", "starting_recipe"]
