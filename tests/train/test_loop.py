"""The local training loop: schedule, early stopping, evidence, determinism."""

from __future__ import annotations

import pytest
import torch

from fedseed.assemble import assemble, state_dict_digest
from fedseed.data import load_digits, load_toy_text, split_examples
from fedseed.recipe import apply_assignment, load_builtin
from fedseed.recipe.evidence import CurvePoint
from fedseed.recipe.training import Schedule
from fedseed.train import batch_order, lr_multiplier, train
from fedseed.train.loop import _thin


def _train(name: str, examples, **assignment):
    recipe = apply_assignment(load_builtin(name), assignment) if assignment else load_builtin(name)
    splits = split_examples(examples, recipe.split)
    return recipe, train(recipe, assemble(recipe), splits)


def test_schedules_warm_up_then_decay_to_the_floor():
    cosine = Schedule(name="cosine", warmup_steps=4, min_lr_ratio=0.1)
    linear = Schedule(name="linear", warmup_steps=0)
    constant = Schedule(name="constant", warmup_steps=2)

    assert [lr_multiplier(cosine, 100, s) for s in range(4)] == [0.2, 0.4, 0.6, 0.8]
    assert lr_multiplier(cosine, 100, 4) == pytest.approx(1.0)
    assert lr_multiplier(cosine, 100, 100) == pytest.approx(0.1)
    assert lr_multiplier(linear, 10, 5) == pytest.approx(0.5)
    assert lr_multiplier(constant, 10, 9) == 1.0


def test_batch_order_covers_each_epoch_once():
    batches = batch_order(10, 4, 6, seed=0)

    first_epoch = torch.cat(batches[:3])
    assert [len(b) for b in batches] == [4, 4, 2, 4, 4, 2]
    assert sorted(first_epoch.tolist()) == list(range(10))
    assert all(torch.equal(a, b) for a, b in zip(batches, batch_order(10, 4, 6, seed=0),
                                                  strict=True))


def test_training_beats_chance_and_reports_evidence():
    recipe, result = _train("digits-mlp", load_digits())
    ev = result.evidence

    assert ev.final.test_metric > 0.7  # chance is 0.1
    assert ev.curve[-1].val_metric >= ev.curve[0].val_metric
    assert ev.num_examples.train + ev.num_examples.validation + ev.num_examples.test == 1797
    assert len(ev.curve) == recipe.budget.max_steps // recipe.budget.eval_every
    assert [p.name for p in ev.optimizer_stats] == ["net.1.weight", "net.1.bias",
                                                     "net.4.weight", "net.4.bias"]
    assert all(s.second_moment_rms > 0 and s.update_ratio > 0 for s in ev.optimizer_stats)


def test_training_is_deterministic():
    _, a = _train("digits-mlp", load_digits(), **{"budget.max_steps": 30,
                                                   "budget.eval_every": 10})
    _, b = _train("digits-mlp", load_digits(), **{"budget.max_steps": 30,
                                                   "budget.eval_every": 10})

    assert state_dict_digest(a.model) == state_dict_digest(b.model)
    assert a.evidence.curve == b.evidence.curve


def test_sgd_reports_gradient_rms_and_no_second_moment():
    data = load_builtin("digits-mlp").model_dump(mode="json", by_alias=True)
    data["optimizer"] = {"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True,
                         "weight_decay": 0.0}
    data.pop("search_space")
    from fedseed.recipe import recipe_from_dict

    recipe = recipe_from_dict({k: v for k, v in data.items() if v is not None})
    result = train(recipe, assemble(recipe), split_examples(load_digits(), recipe.split))

    stats = result.evidence.optimizer_stats
    assert all(s.second_moment_rms is None for s in stats)
    assert all(s.grad_rms > 0 for s in stats)


def test_early_stopping_stops_and_restores_the_best_weights():
    # A huge learning rate makes validation worse after the first evaluations.
    recipe, result = _train("digits-mlp", load_digits(), **{
        "optimizer.lr": 5.0, "budget.max_steps": 400, "budget.eval_every": 5})
    ev = result.evidence

    assert ev.stopped_early and ev.steps < 400
    best = max(ev.curve, key=lambda p: p.val_metric)
    assert ev.best_step == best.step
    assert ev.final.val_metric == best.val_metric


def test_curve_is_thinned_to_64_points_keeping_the_last():
    curve = [CurvePoint(step=i, val_loss=1.0, val_metric=0.5) for i in range(1, 201)]

    thin = _thin(curve)

    assert len(thin) == 64
    assert thin[0].step == 1 and thin[-1].step == 200


def test_long_runs_report_at_most_64_curve_points():
    recipe = apply_assignment(load_builtin("digits-mlp"), {"budget.max_steps": 150,
                                                            "budget.eval_every": 1})
    recipe = recipe.model_copy(update={
        "budget": recipe.budget.model_copy(update={"early_stopping": None})})

    result = train(recipe, assemble(recipe), split_examples(load_digits(), recipe.split))

    assert len(result.evidence.curve) == 64
    assert result.evidence.curve[-1].step == 150


def test_language_model_reports_perplexity_that_falls():
    _, result = _train("charlm-gpt2-tiny", load_toy_text(120), **{
        "budget.max_steps": 40, "budget.eval_every": 10})
    curve = result.evidence.curve

    assert curve[-1].val_metric < curve[0].val_metric < 259
    assert result.evidence.final.test_metric is not None



def _nan_weights(recipe):
    state = assemble(recipe).state_dict()
    next(v for v in state.values() if v.is_floating_point()).view(-1)[0] = float("nan")
    return state


@pytest.mark.parametrize("name, how", [("digits-mlp", "huge-lr"), ("digits-mlp", "nan-weights"),
                                       ("charlm-gpt2-tiny", "nan-weights")])
def test_a_run_whose_loss_blows_up_reports_divergence_with_the_worst_values(name, how):
    from fedseed.personalize import personalize_examples
    from fedseed.recipe.evidence import MAX_MAGNITUDE, WORST_LOSS

    recipe = load_builtin(name)
    examples = load_digits() if name == "digits-mlp" else load_toy_text(120)
    if how == "huge-lr":  # AdamW at lr 10, decay 1: weights x(-9) per step, loss inf by step 24
        done = personalize_examples(recipe, examples, assignment={
            "optimizer.lr": 10.0, "optimizer.weight_decay": 1.0, "budget.eval_every": 50})
    else:  # a NaN weight: the very first loss is NaN
        done = personalize_examples(recipe, examples, initial_state=_nan_weights(recipe))
    ev = done.recipe.evidence
    worst = 0.0 if recipe.task.higher_is_better else MAX_MAGNITUDE  # accuracy 0, perplexity max

    assert ev.diverged and ev.stopped_early and ev.steps < 50
    assert ev.curve[-1].step == ev.best_step == ev.steps
    assert (ev.final.val_loss, ev.final.val_metric) == (WORST_LOSS, worst)
    assert (ev.final.test_loss, ev.final.test_metric) == (WORST_LOSS, worst)
    assert all(p.val_loss > 0 and p.train_loss > 0 for p in ev.curve)  # never a perfect 0.0
    assert all(s.grad_rms > 0 and s.update_ratio > 0 for s in ev.optimizer_stats)
    if how == "nan-weights":  # a NaN statistic saturates at the bound, never reads as 0.0
        assert all(s.grad_rms == MAX_MAGNITUDE for s in ev.optimizer_stats)
