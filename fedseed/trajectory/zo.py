"""The client step of seed-trajectory mode: two-point zeroth-order estimates along
pool perturbations, forward passes only (after MeZO, Malladi et al., 2023, and
FedKSeed, Qin et al., ICML 2024).

Per step, for each of ``seeds_per_step`` seeds ``k`` drawn from the pool (uniformly,
or FedKSeed-Pro style with ``p_k ~ exp(alpha |c_k| / max |c|)``):

    g = (L(w + eps z_k) - L(w - eps z_k)) / (2 eps)      on one minibatch
    w <- w - lr g z_k,        sums[k] += lr g

``z_k`` is regenerated tensor by tensor each time it is needed (MeZO's trick), so
memory stays at the model plus its largest tensor: no gradients, no optimizer
state. The reply is the per-seed sums (at most ``pool_size`` floats); the server
adds their weighted mean to the coefficients, so the client's local move and the
shared model's move are the same kind of object.

A loss that goes non-finite (or past the schema's bound), in an estimate or at
validation, ends the run there: the evidence says ``diverged``, with the worst
values, and the update is empty (the server applies no diverged client's update).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fedseed.assemble import assemble
from fedseed.data.examples import Examples, split_examples
from fedseed.data.tensors import num_rows, to_tensors
from fedseed.recipe.derive import child_recipe
from fedseed.recipe.evidence import (
    CurvePoint,
    Evidence,
    ExampleCounts,
    FinalMetrics,
    diverged_final,
    diverged_point,
    reportable,
)
from fedseed.recipe.model import Recipe
from fedseed.recipe.trajectory import SeedUpdate, encode_floats, encode_indices
from fedseed.trajectory.pool import add_perturbation, seed_of, trainable

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class ZOResult:
    """A client's zeroth-order run: its reply recipe (no weights) and the local model."""

    recipe: Recipe
    model: torch.nn.Module
    seconds: float


def seed_probabilities(recipe: Recipe) -> np.ndarray:
    """Sampling probabilities over the pool: uniform, or FedKSeed-Pro's
    ``exp(alpha * |c_k| / max |c|)`` (seeds that moved the model get drawn more)."""
    t = recipe.trajectory
    assert t is not None
    if t.sampling == "uniform":
        return np.full(t.pool_size, 1.0 / t.pool_size)
    magnitude = np.abs(t.coefficient_array().astype(np.float64))
    top = magnitude.max()
    logits = t.pro_alpha * (magnitude / top if top > 0 else magnitude)
    weights = np.exp(logits - logits.max())
    return weights / weights.sum()


def zo_train(meta: Recipe, examples: Examples, *, seed: int,
             progress: Callable[[int], None] | None = None) -> ZOResult:
    """Run ``meta.trajectory.steps`` zeroth-order steps on ``examples``' train split."""
    import torch

    from fedseed.train.loop import batch_order
    from fedseed.train.objectives import evaluate, logits_of, loss_sum, trim_padding

    t = meta.trajectory
    if t is None:
        raise ValueError("zo_train needs a recipe with a trajectory section")
    started = time.perf_counter()
    splits = split_examples(examples, meta.split)
    data = {name: to_tensors(getattr(splits, name), meta)
            for name in ("train", "validation", "test") if len(getattr(splits, name))}
    model = assemble(meta)  # replays the shared model
    model.eval()  # no dropout: both points of an estimate must see the same function
    params = trainable(model)
    probabilities = seed_probabilities(meta)
    draws = np.random.default_rng(seed)
    sums: dict[int, float] = {}
    batches = batch_order(num_rows(data["train"]), meta.budget.batch_size, t.steps, seed)
    curve: list[CurvePoint] = []
    every = max(1, min(meta.budget.eval_every, t.steps))
    eps, lr = t.epsilon, t.lr

    def loss(batch: dict) -> float:
        total, terms = loss_sum(logits_of(model, batch, meta), batch, meta)
        return float(total) / max(1, terms)

    running, running_n = 0.0, 0
    diverged, step = False, 0
    with torch.no_grad():
        for step, index in enumerate(batches, start=1):
            batch = trim_padding({k: v[index] for k, v in data["train"].items()})
            for k in draws.choice(t.pool_size, size=t.seeds_per_step, p=probabilities):
                s = seed_of(t.base_seed, int(k))
                add_perturbation(params, s, eps)
                plus = loss(batch)
                add_perturbation(params, s, -2 * eps)
                minus = loss(batch)
                add_perturbation(params, s, eps)
                g = (plus - minus) / (2 * eps)
                diverged = not (reportable(plus) and reportable(minus) and math.isfinite(g))
                if diverged:
                    break
                add_perturbation(params, s, -lr * g)
                sums[int(k)] = sums.get(int(k), 0.0) + lr * g
                running += (plus + minus) / 2
                running_n += 1
            if diverged:
                break
            if step % every == 0 or step == t.steps:
                val_loss, val_metric = evaluate(model, data["validation"], meta)
                if diverged := not (reportable(val_loss) and reportable(val_metric)):
                    break
                curve.append(CurvePoint(step=step, train_loss=_sig(running / max(1, running_n)),
                                        val_loss=_sig(val_loss), val_metric=_sig(val_metric)))
                running, running_n = 0.0, 0
            if progress is not None:
                progress(step)
    if diverged:
        curve.append(diverged_point(step, meta.task.higher_is_better))
        final = diverged_final(meta.task.higher_is_better, "test" in data)
        sums = {}  # a diverged client moves nothing
    else:
        test_loss = test_metric = None
        if "test" in data:
            test_loss, test_metric = evaluate(model, data["test"], meta)
        last = curve[-1]
        final = FinalMetrics(val_loss=last.val_loss, val_metric=last.val_metric,
                             test_loss=None if test_loss is None else _sig(test_loss),
                             test_metric=None if test_metric is None else _sig(test_metric))
    evidence = Evidence(
        curve=curve[-64:],
        final=final,
        num_examples=ExampleCounts(train=num_rows(data["train"]),
                                   validation=num_rows(data["validation"]),
                                   test=num_rows(data["test"]) if "test" in data else 0),
        steps=step, best_step=step, stopped_early=step < t.steps,
        wall_seconds=round(time.perf_counter() - started, 3), diverged=diverged)
    seeds = np.asarray(sorted(k for k, v in sums.items() if v != 0.0), dtype=np.int64)
    update = SeedUpdate(seeds=encode_indices(seeds),
                        sums=encode_floats(np.asarray([sums[int(k)] for k in seeds],
                                                      dtype=np.float32)),
                        steps=step)
    child = child_recipe(meta, meta, evidence, method="client-zo")
    child = child.model_copy(update={"trajectory": t.model_copy(
        update={"coefficients": None, "update": update})})
    return ZOResult(recipe=child, model=model, seconds=time.perf_counter() - started)


def _sig(x: float) -> float:
    """6 significant digits, within the schema's bounds (divergence is checked first)."""
    return float(f"{min(x, 1e12):.6g}") if math.isfinite(x) else 1e12
