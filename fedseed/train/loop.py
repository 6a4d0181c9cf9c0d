"""The local training loop: a recipe, a model and a device's data in; trained weights
and evidence out.

It does exactly what the recipe says (optimizer, warmup and schedule, gradient
clipping, batch size, ``max_steps``, evaluation cadence and early stopping) and
nothing else, so that its cost stays within a few percent of a bare PyTorch loop
(``fedseed bench overhead`` measures it). Training runs under a forked RNG seeded
from the recipe: the same recipe on the same data gives the same weights.

A training or validation loss that goes non-finite (or past the schema's bound) ends
the run at that step: the evidence says ``diverged`` and reports the worst values
(:func:`fedseed.recipe.evidence.diverged_final`), never the good-looking zero a
non-finite number would otherwise be rounded to.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from fedseed.data.examples import Splits
from fedseed.data.tensors import Batch, num_rows, to_tensors
from fedseed.recipe.evidence import (
    MAX_CURVE_POINTS,
    CurvePoint,
    Evidence,
    ExampleCounts,
    FinalMetrics,
    diverged_final,
    diverged_point,
    reportable,
)
from fedseed.recipe.model import Recipe
from fedseed.train.objectives import evaluate, logits_of, loss_sum, trim_padding
from fedseed.train.optim import build_optimizer, warm_start_adam
from fedseed.train.schedule import lr_multiplier
from fedseed.train.stats import OptimizerStats, _sig


@dataclass(frozen=True)
class Progress:
    """What a progress callback is told after every optimizer step."""

    step: int
    max_steps: int
    last: CurvePoint | None


ProgressFn = Callable[[Progress], None]


@dataclass(frozen=True)
class TrainResult:
    """The trained model (best weights if early stopping is on) and its evidence.

    After a divergence the model holds the best weights seen before it under early
    stopping, and otherwise whatever the last step left (often non-finite).
    """

    model: torch.nn.Module
    evidence: Evidence


def batch_order(n: int, batch_size: int, steps: int, seed: int) -> list[torch.Tensor]:
    """Index batches for ``steps`` steps: reshuffled epochs from a seeded generator.

    A batch never spans two epochs; a final short batch is kept. Exposed so that a
    benchmark can replay exactly the same batches in a bare loop.
    """
    generator = torch.Generator().manual_seed(seed)
    batches: list[torch.Tensor] = []
    while len(batches) < steps:
        order = torch.randperm(n, generator=generator)
        batches += list(order.split(batch_size))
    return batches[:steps]


def train(recipe: Recipe, model: torch.nn.Module, splits: Splits, *,
          progress: ProgressFn | None = None) -> TrainResult:
    """Train ``model`` on ``splits.train`` as ``recipe`` says; report evidence."""
    start = time.perf_counter()
    data = {name: to_tensors(getattr(splits, name), recipe)
            for name in ("train", "validation", "test") if len(getattr(splits, name))}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.init.seed)
        state = _run(recipe, model, data, progress)
    budget = recipe.budget
    if state.diverged:
        final = diverged_final(recipe.task.higher_is_better, "test" in data)
    else:
        final = _final(state.best, model, data, recipe)
    evidence = Evidence(
        curve=_thin(state.curve),
        final=final,
        num_examples=ExampleCounts(
            train=num_rows(data["train"]), validation=num_rows(data["validation"]),
            test=num_rows(data["test"]) if "test" in data else 0,
        ),
        steps=state.steps,
        best_step=state.best.step if budget.early_stopping else state.steps,
        stopped_early=state.steps < budget.max_steps,
        wall_seconds=round(time.perf_counter() - start, 3),
        optimizer_stats=state.stats,
        diverged=state.diverged,
    )
    return TrainResult(model=model, evidence=evidence)


def _final(best: CurvePoint, model: torch.nn.Module, data: dict[str, Batch],
           recipe: Recipe) -> FinalMetrics:
    test_loss = test_metric = None
    if "test" in data:
        test_loss, test_metric = evaluate(model, data["test"], recipe)
    return FinalMetrics(
        val_loss=best.val_loss, val_metric=best.val_metric,
        test_loss=None if test_loss is None else _sig(test_loss),
        test_metric=None if test_metric is None else _sig(test_metric),
    )


@dataclass
class _State:
    curve: list[CurvePoint]
    best: CurvePoint
    steps: int
    stats: list
    diverged: bool = False


def _run(recipe: Recipe, model: torch.nn.Module, data: dict[str, Batch],
         progress: ProgressFn | None) -> _State:
    budget, schedule = recipe.budget, recipe.schedule
    train_data, val_data = data["train"], data["validation"]
    optimizer = build_optimizer(recipe.optimizer, model)
    if recipe.warm_start is not None:
        warm_start_adam(optimizer, model, recipe.warm_start)
    base_lrs = [group["lr"] for group in optimizer.param_groups]
    stats = OptimizerStats(model, budget.max_steps)
    stopping = budget.early_stopping
    higher = recipe.task.higher_is_better
    curve: list[CurvePoint] = []
    best: CurvePoint | None = None
    best_weights: dict[str, torch.Tensor] | None = None
    waited = 0
    diverged = False
    running, running_n = 0.0, 0
    model.train()
    batches = batch_order(num_rows(train_data), budget.batch_size, budget.max_steps,
                          recipe.init.seed)
    step = 0
    for step, index in enumerate(batches, start=1):
        multiplier = lr_multiplier(schedule, budget.max_steps, step - 1)
        for group, base in zip(optimizer.param_groups, base_lrs, strict=True):
            group["lr"] = base * multiplier
        batch = trim_padding({k: v[index] for k, v in train_data.items()})
        total, terms = loss_sum(logits_of(model, batch, recipe), batch, recipe)
        loss = total / max(1, terms)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if budget.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), budget.grad_clip)
        sampled = stats.wants(step - 1)
        if sampled:
            stats.before_step()
        optimizer.step()
        if sampled:
            stats.after_step()
        value = float(loss.detach())
        if not reportable(value):
            diverged = True
            break
        running += value
        running_n += 1
        point = None
        if step % budget.eval_every == 0 or step == budget.max_steps:
            val_loss, val_metric = evaluate(model, val_data, recipe)
            if not (reportable(val_loss) and reportable(val_metric)):
                diverged = True
                break
            point = CurvePoint(step=step, train_loss=_sig(running / running_n),
                               val_loss=_sig(val_loss), val_metric=_sig(val_metric))
            running, running_n = 0.0, 0
            curve.append(point)
            gain = (val_metric - best.val_metric) if best is not None else float("inf")
            if not higher:
                gain = (best.val_metric - val_metric) if best is not None else float("inf")
            if best is None or gain > (stopping.min_delta if stopping else 0.0):
                best, waited = point, 0
                if stopping:
                    best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                waited += 1
        if progress is not None:
            progress(Progress(step=step, max_steps=budget.max_steps, last=point))
        if stopping and waited >= stopping.patience:
            break
    if stopping and best_weights is not None:
        model.load_state_dict(best_weights)
    if diverged:  # no point running on: the run ends where its loss left the range
        curve.append(diverged_point(step, higher))
        best = curve[-1]
    elif not (stopping and best_weights is not None):
        best = curve[-1]
    assert best is not None
    return _State(curve=curve, best=best, steps=step, stats=stats.summary(optimizer),
                  diverged=diverged)


def _thin(curve: list[CurvePoint]) -> list[CurvePoint]:
    """At most :data:`MAX_CURVE_POINTS` evenly spaced points, the last one kept."""
    if len(curve) <= MAX_CURVE_POINTS:
        return curve
    last = len(curve) - 1
    picks = sorted({round(i * last / (MAX_CURVE_POINTS - 1)) for i in range(MAX_CURVE_POINTS)})
    return [curve[i] for i in picks]
