"""Robust aggregation: medians, weight caps and self-contradiction checks, on real
client recipes and on controlled ones."""

from __future__ import annotations

import pytest
from support import synthetic_reply

from fedseed.meta.base import ClientReply
from fedseed.meta.robust import (
    client_weights,
    inconsistencies,
    score_groups,
    screen,
    weighted_median,
    weighted_quantile,
)
from fedseed.recipe.evidence import CurvePoint, FinalMetrics


def test_weighted_median_and_quantile():
    assert weighted_median([3.0, 1.0, 2.0], [1, 1, 1]) == 2.0
    assert weighted_median([1.0, 100.0], [3, 1]) == 1.0
    assert weighted_quantile([1.0, 2.0, 3.0, 4.0], [1, 1, 1, 1], 0.75) == 3.0
    with pytest.raises(ValueError):
        weighted_median([], [])


@pytest.fixture(scope="module")
def real_replies():
    from fedseed.data.builtin import load_builtin_dataset
    from fedseed.data.partition import partition
    from fedseed.personalize import personalize_examples
    from fedseed.recipe import load_builtin

    recipe = load_builtin("digits-mlp")
    parts = partition(load_builtin_dataset("digits"), 8, partitioner="dirichlet", alpha=0.5,
                      seed=0)
    out = []
    for i, part in enumerate(parts[:3]):
        done = personalize_examples(recipe, part, assignment={"budget.max_steps": 60},
                                    method="client")
        out.append(ClientReply(done.recipe, done.digest, i, {"budget.max_steps": 60}))
    return out


def test_real_client_recipes_are_consistent(real_replies):
    for reply in real_replies:
        assert inconsistencies(reply.recipe) == []


def _with_final(reply: ClientReply, **final) -> ClientReply:
    ev = reply.recipe.evidence
    new_final = ev.final.model_copy(update=final)
    evidence = ev.model_copy(update={"final": new_final})
    recipe = reply.recipe.model_copy(update={"evidence": evidence})
    return ClientReply(recipe, reply.digest, reply.node_id, reply.assignment)


def test_claims_that_contradict_the_curve_are_flagged(real_replies):
    reply = real_replies[0]
    ev = reply.recipe.evidence
    n_val = ev.num_examples.validation
    # A final accuracy no curve point shows, and one that is not k / n_val.
    better = min(1.0, round(ev.final.val_metric * n_val + 1) / n_val)
    if better != ev.final.val_metric:
        assert any("curve" in p for p in inconsistencies(
            _with_final(reply, val_metric=better).recipe))
    # A loss better than the curve's at best_step (what aggregators minimise).
    assert any("best_step" in p for p in inconsistencies(
        _with_final(reply, val_loss=ev.final.val_loss / 2).recipe))
    assert any("whole number" in p for p in inconsistencies(
        _with_final(reply, val_metric=0.123456).recipe))
    assert any("outside [0, 1]" in p for p in inconsistencies(
        _with_final(reply, val_metric=1.5).recipe))


def test_curve_past_the_steps_run_is_flagged():
    reply = synthetic_reply({"optimizer.lr": 0.001}, 0.3, steps=100)
    ev = reply.recipe.evidence
    fake = ev.model_copy(update={"steps": 40})
    recipe = reply.recipe.model_copy(update={"evidence": fake})
    assert any("curve runs to step" in p for p in inconsistencies(recipe))


def test_perplexity_must_be_exp_of_loss():
    from fedseed.recipe import load_builtin
    from fedseed.recipe.evidence import Evidence, ExampleCounts

    recipe = load_builtin("charlm-gpt2-tiny")
    points = [CurvePoint(step=25, val_loss=2.0, val_metric=7.389056)]
    ok = Evidence(curve=points, final=FinalMetrics(val_loss=2.0, val_metric=7.389056),
                  num_examples=ExampleCounts(train=10, validation=2, test=2), steps=25,
                  best_step=25, stopped_early=True, wall_seconds=1.0)
    assert inconsistencies(recipe.model_copy(update={"evidence": ok})) == []
    lie = ok.model_copy(update={"final": FinalMetrics(val_loss=2.0, val_metric=1.5)})
    problems = inconsistencies(recipe.model_copy(update={"evidence": lie}))
    assert problems and any("exp" in p or "curve" in p for p in problems)


def test_screen_leaves_out_flagged_only_when_robust(real_replies):
    liar = _with_final(real_replies[0], val_metric=0.123456)
    replies = [liar, *real_replies[1:]]
    assert len(screen(replies, robust=True).kept) == len(replies) - 1
    assert len(screen(replies, robust=False).kept) == len(replies)
    assert liar.digest in screen(replies, robust=False).flagged


def test_inflated_example_counts_cannot_buy_the_round():
    honest = [synthetic_reply({"optimizer.lr": 0.003}, 0.2, node=i) for i in range(4)]
    # One client claims a million examples and a perfect loss for a bad configuration.
    liar = synthetic_reply({"optimizer.lr": 0.0001}, 0.0, node=9, n_train=1_000_000)
    assert max(client_weights([*honest, liar], robust=True)) <= 80  # the median
    assert score_groups([*honest, liar], robust=False)[0].assignment == {"optimizer.lr": 0.0001}
    assert score_groups([*honest, liar], robust=True)[0].assignment == {"optimizer.lr": 0.003}


def test_a_minority_liar_cannot_move_a_groups_median():
    group = [synthetic_reply({"optimizer.lr": 0.01}, 0.9, node=i) for i in range(3)]
    liar = synthetic_reply({"optimizer.lr": 0.01}, 0.0, node=7)
    other = [synthetic_reply({"optimizer.lr": 0.003}, 0.3, node=10 + i) for i in range(4)]
    scores = score_groups([*group, liar, *other], robust=True)
    assert scores[0].assignment == {"optimizer.lr": 0.003}
    assert scores[1].badness == pytest.approx(0.9)
