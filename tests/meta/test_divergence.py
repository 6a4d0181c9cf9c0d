"""Diverged client runs never decide a meta-recipe: each aggregator against replies
from really training digits-mlp with an absurd configuration (AdamW at lr 10 with
weight decay 1, which multiplies the weights by -9 per step: the loss passes the
schema's bound at step 11 and is infinite by step 24). Before evidence said
``diverged``, those runs reported a validation loss of 0.0, the best any
aggregator can see, and won."""

from __future__ import annotations

import math

import pytest
from support import synthetic_reply

from fedseed.errors import AggregationError
from fedseed.meta import (
    AGGREGATORS,
    AggregatorState,
    Best,
    ClientReply,
    FedEx,
    Flora,
    Options,
    SuccessiveHalving,
)
from fedseed.meta.budget import budget_from_curves
from fedseed.meta.robust import losses, screen
from fedseed.meta.warm import pooled_second_moments
from fedseed.recipe import load_builtin
from fedseed.recipe.evidence import WORST_LOSS
from fedseed.recipe.portfolio import Candidate, Portfolio
from fedseed.recipe.search import SearchSpace

#: Diverges within its budget; its first evaluation comes after the loss is infinite.
BLOWUP = {"optimizer.lr": 10.0, "optimizer.weight_decay": 1.0, "budget.max_steps": 100,
          "budget.eval_every": 50, "schedule.warmup_steps": 10}
ROBUST = pytest.mark.parametrize("robust", [True, False], ids=["robust", "naive"])


def _sane(lr: float) -> dict:
    return {**BLOWUP, "optimizer.lr": lr, "optimizer.weight_decay": 0.0}


@pytest.fixture(scope="module")
def diverged():
    """Three devices' real client recipes for BLOWUP."""
    from fedseed.data.builtin import load_builtin_dataset
    from fedseed.data.partition import partition
    from fedseed.personalize import personalize_examples

    parts = partition(load_builtin_dataset("digits"), 3, partitioner="iid", seed=0)
    out = []
    for node, part in enumerate(parts):
        done = personalize_examples(load_builtin("digits-mlp"), part, assignment=BLOWUP,
                                    method="client")
        out.append(ClientReply(done.recipe, done.digest, 100 + node, dict(BLOWUP)))
    return out


def _honest(assignment: dict, val_loss: float, first_node: int) -> list[ClientReply]:
    return [synthetic_reply(assignment, val_loss, node=first_node + i, steps=100)
            for i in range(3)]


def _portfolio(method: str, *assignments: dict) -> Portfolio:
    weight = 1.0 / len(assignments)
    candidates = [Candidate(assignment=a, weight=weight) for a in assignments]
    candidates[-1] = candidates[-1].model_copy(
        update={"weight": 1.0 - weight * (len(assignments) - 1)})
    return Portfolio(method=method, group_size=3, candidates=candidates)


def test_real_blowup_reports_divergence_and_passes_screening(diverged):
    evidence = [r.recipe.evidence for r in diverged]

    assert all(ev.diverged and ev.final.val_loss == WORST_LOSS for ev in evidence)
    assert screen(diverged, robust=True).flagged == {}
    honest = _honest(_sane(3e-3), 0.5, 0)
    assert losses([*honest, *diverged])[-1] > 0.5  # the round's worst, not the bound
    assert max(losses([*honest, *diverged])) < WORST_LOSS
    assert pooled_second_moments(diverged) is None
    assert budget_from_curves(diverged, eval_every=50) is None


@ROBUST
def test_best_never_picks_a_diverged_configuration(diverged, robust):
    replies = [*_honest(_sane(3e-3), 0.5, 0), *diverged]

    meta, state = Best(Options(robust, budget_from_curves=False))(
        load_builtin("digits-mlp"), replies, AggregatorState())

    assert meta.optimizer.lr == 3e-3 and meta.optimizer.weight_decay == 0.0
    assert state.values["best_val_loss"] == 0.5


@ROBUST
def test_fedex_moves_weight_away_from_a_diverged_configuration(diverged, robust):
    meta = load_builtin("digits-mlp").model_copy(update={
        "portfolio": _portfolio("fedex", BLOWUP, _sane(3e-3))})
    replies = [*diverged, *_honest(_sane(3e-3), 0.5, 0)]

    nxt, _ = FedEx(Options(robust, budget_from_curves=False))(meta, replies, AggregatorState())

    blowup, sane = nxt.portfolio.candidates
    assert blowup.weight < sane.weight
    assert nxt.optimizer.lr == 3e-3


@ROBUST
def test_sha_never_keeps_a_diverged_configuration(diverged, robust):
    sha = SuccessiveHalving(Options(robust, budget_from_curves=False), population=3, eta=2)
    meta = load_builtin("digits-mlp").model_copy(update={
        "portfolio": _portfolio("sha", BLOWUP, _sane(3e-3), _sane(1e-4))})
    replies = [*diverged, *_honest(_sane(3e-3), 0.5, 0), *_honest(_sane(1e-4), 1.5, 10)]

    nxt, _ = sha(meta, replies, AggregatorState())

    survivors = [c.assignment["optimizer.lr"] for c in nxt.portfolio.candidates]
    assert survivors == [3e-3, 1e-4]  # the halving keeps two of three: not the diverged one
    assert nxt.optimizer.lr == 3e-3


@ROBUST
def test_flora_surface_is_pushed_up_where_runs_diverged(diverged, robust):
    # Weight decay 1.0 is measured only by the diverged runs: the surface there is
    # theirs alone. (Five pairs plus three: too few for least trimmed squares, which
    # would otherwise drop three identical outliers whatever they claim.)
    space = SearchSpace.model_validate({"params": {
        "optimizer.lr": {"kind": "log_uniform", "low": 1e-4, "high": 10.0},
        "optimizer.weight_decay": {"kind": "choice", "values": [0.0, 1.0]}}})
    meta = load_builtin("digits-mlp").model_copy(update={"search_space": space})
    honest = [synthetic_reply(_sane(lr), round(0.3 + 0.05 * math.log(lr / 3e-3) ** 2, 6),
                              node=i, steps=100)
              for i, lr in enumerate([1e-4, 1e-3, 1e-2, 0.1, 1.0])]

    nxt, state = Flora(Options(robust, budget_from_curves=False))(
        meta, [*honest, *diverged], AggregatorState())

    assert nxt.optimizer.weight_decay == 0.0 and nxt.optimizer.lr < 1.0
    assert state.values["predicted_val_loss"] < 0.5


@pytest.mark.parametrize("name", ["best", "fedex", "flora", "sha"])
def test_a_round_in_which_everything_diverged_keeps_the_meta_recipe(diverged, name):
    meta = load_builtin("digits-mlp").model_copy(update={"portfolio": _portfolio(name, BLOWUP)})

    with pytest.raises(AggregationError, match="diverged"):
        AGGREGATORS[name](Options(budget_from_curves=False))(meta, diverged, AggregatorState())
