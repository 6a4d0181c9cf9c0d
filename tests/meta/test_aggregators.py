"""FedEx, FLoRA and successive halving as pure functions, on controlled client
recipes whose losses follow a known surface (best learning rate 3e-3)."""

from __future__ import annotations

import math
import random

import pytest
from support import synthetic_reply

from fedseed.federation.server import deal, plan_round
from fedseed.meta import AGGREGATORS, AggregatorState, FedEx, Flora, Options, SuccessiveHalving
from fedseed.recipe import load_builtin
from fedseed.recipe.codec import canonical_bytes, parse_recipe
from fedseed.recipe.portfolio import Candidate, Portfolio

BEST_LR = 3e-3


def loss_at(assignment: dict) -> float:
    """A bowl in log learning rate, plus a small penalty for big batches."""
    lr = float(assignment.get("optimizer.lr", 1e-3))
    batch = int(assignment.get("budget.batch_size", 32))
    return round(0.1 + 0.2 * math.log(lr / BEST_LR) ** 2 + 0.001 * batch, 6)


def play(aggregator, rounds: int, nodes: int = 16, liars: int = 0, seed: int = 0):
    """Run ``rounds`` rounds: plan, clients report the bowl's loss, aggregate."""
    meta = aggregator.prepare(load_builtin("digits-mlp"))
    state = AggregatorState()
    rng = random.Random(seed)
    for _ in range(rounds):
        plan = plan_round(meta, range(nodes), 1.0, 2, rng)
        replies = []
        for node, assignment in plan:
            steps = int(assignment.get("budget.max_steps", 200))
            if node < liars:  # claims a perfect loss for whatever it ran, 1000x examples
                replies.append(synthetic_reply(assignment, 0.0, node=node, n_train=80_000,
                                               steps=steps))
            else:
                replies.append(synthetic_reply(assignment, loss_at(assignment), node=node,
                                               steps=steps))
        meta, state = aggregator(meta, replies, state)
        # Every meta-recipe is a valid, canonical, signable recipe.
        assert parse_recipe(canonical_bytes(meta)) == meta
    return meta, state


def test_every_aggregator_is_registered():
    assert set(AGGREGATORS) == {"best", "fedex", "flora", "sha", "trajectory"}


def test_fedex_moves_weight_to_the_better_configurations():
    meta, state = play(FedEx(Options(budget_from_curves=False)), rounds=4)
    portfolio = meta.portfolio
    assert portfolio is not None and portfolio.method == "fedex" and portfolio.stage == 4
    weights = {c.assignment["optimizer.lr"]: c.weight for c in portfolio.candidates}
    assert sum(weights.values()) == pytest.approx(1.0)
    tried = [c for c in portfolio.candidates if c.score is not None]
    assert len(tried) >= 3
    best = min(tried, key=lambda c: loss_at(c.assignment))
    worst = max(tried, key=lambda c: loss_at(c.assignment))
    assert best.weight > 1 / len(portfolio.candidates) > worst.weight
    assert min(weights.values()) >= 0.1 / len(portfolio.candidates) - 1e-12  # the floor
    # The recommendation is the heaviest configuration, applied to the recipe itself.
    top = max(portfolio.candidates, key=lambda c: c.weight)
    assert meta.optimizer.lr == top.assignment["optimizer.lr"]
    assert meta.lineage is not None and meta.lineage.method == "fedex"


def test_successive_halving_halves_the_population_and_doubles_the_budget():
    sha = SuccessiveHalving(Options(budget_from_curves=False), population=4, eta=2)
    meta0 = sha.prepare(load_builtin("digits-mlp"))
    budgets0 = {c.assignment["budget.max_steps"] for c in meta0.portfolio.candidates}
    assert budgets0 == {100} and len(meta0.portfolio.candidates) == 4  # 400 / 2**2
    assert meta0.portfolio.group_size == 3
    sizes, budgets = [], []
    meta, state = meta0, AggregatorState()
    rng = random.Random(0)
    for _ in range(4):
        plan = plan_round(meta, range(16), 1.0, 2, rng)
        replies = [synthetic_reply(a, loss_at(a), node=n, steps=a["budget.max_steps"])
                   for n, a in plan]
        meta, state = sha(meta, replies, state)
        sizes.append(len(meta.portfolio.candidates))
        budgets.append(meta.portfolio.candidates[0].assignment["budget.max_steps"])
    assert sizes == [2, 1, 1, 1] and budgets == [200, 400, 400, 400]
    survivor = meta.portfolio.candidates[0].assignment
    assert loss_at(survivor) == min(loss_at(c.assignment) for c in meta0.portfolio.candidates)


def test_flora_recommends_near_the_bottom_of_the_surface():
    meta, state = play(Flora(Options(budget_from_curves=False)), rounds=2)
    assert abs(math.log(meta.optimizer.lr / BEST_LR)) < math.log(3)
    assert len(state.values["pairs"]) == 32  # every pair of both rounds is kept


@pytest.mark.parametrize("name", ["fedex", "flora", "sha", "best"])
def test_robust_aggregation_resists_twenty_percent_liars(name):
    clean, _ = play(AGGREGATORS[name](Options(budget_from_curves=False)), rounds=3)
    robust, _ = play(AGGREGATORS[name](Options(budget_from_curves=False)), rounds=3, liars=4)
    naive, _ = play(AGGREGATORS[name](Options(robust=False, budget_from_curves=False)),
                    rounds=3, liars=4)
    clean_loss = loss_at({"optimizer.lr": clean.optimizer.lr,
                          "budget.batch_size": clean.budget.batch_size})
    robust_loss = loss_at({"optimizer.lr": robust.optimizer.lr,
                           "budget.batch_size": robust.budget.batch_size})
    naive_loss = loss_at({"optimizer.lr": naive.optimizer.lr,
                          "budget.batch_size": naive.budget.batch_size})
    assert robust_loss <= clean_loss + 0.15
    assert naive_loss > 0  # the undefended run completes too (its quality is the bench's)


def test_deal_follows_the_weights():
    portfolio = Portfolio(method="fedex", candidates=[
        Candidate(assignment={"optimizer.lr": 0.001}, weight=0.75),
        Candidate(assignment={"optimizer.lr": 0.01}, weight=0.25)])
    dealt = deal(portfolio, 8, random.Random(0))
    assert sorted(a["optimizer.lr"] for a in dealt) == [0.001] * 6 + [0.01] * 2


def test_portfolio_is_validated():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="sum to"):
        Portfolio(method="fedex", candidates=[
            Candidate(assignment={"optimizer.lr": 0.001}, weight=0.5)])
    with pytest.raises(ValidationError, match="optimizer.lr"):
        Candidate(assignment={"optimizer.lr": -1.0}, weight=1.0)


def test_new_sections_leave_existing_digests_alone():
    from fedseed.recipe.codec import recipe_digest

    recipe = load_builtin("digits-mlp")
    assert b"portfolio" not in canonical_bytes(recipe)
    assert b"warm_start" not in canonical_bytes(recipe)
    prepared = FedEx().prepare(recipe)
    assert recipe_digest(prepared) != recipe_digest(recipe)
    assert recipe_digest(prepared.model_copy(update={"portfolio": None})) == recipe_digest(recipe)


def test_budget_from_curves_sets_the_recommended_max_steps():
    meta, _ = play(FedEx(Options(budget_from_curves=True)), rounds=1)
    # synthetic curves decay as 1 / (1 + t / 20): a power law the fit resolves.
    assert meta.budget.max_steps % meta.budget.eval_every == 0
    assert meta.schedule.warmup_steps <= meta.budget.max_steps
