"""What a device reports after running a recipe (evidence) and where a recipe came
from (lineage).

Evidence is O(number of tensors), never O(number of parameters): a learning curve
of at most 64 points, a handful of final metrics, and per-tensor optimizer
statistics. That is what keeps a client recipe of a transformer under 16 KB.

A run whose loss goes non-finite, or past :data:`MAX_MAGNITUDE`, has *diverged*: it
stops there and says so (``Evidence.diverged``), and its final metrics are the worst
values the schema holds (:func:`diverged_final`), never a good-looking number.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, StringConstraints

from fedseed.recipe._base import (
    MAX_MAGNITUDE,
    MAX_STEPS,
    Digest,
    Finite,
    KeyId,
    NonNegative,
    Steps,
    StrictModel,
)

MAX_CURVE_POINTS = 64
MAX_TENSORS = 1024
Count = Annotated[int, Field(ge=0, le=10**9)]
TensorName = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class CurvePoint(StrictModel):
    """One evaluation: mean training loss since the previous point, validation loss
    and validation metric at ``step``."""

    step: Steps
    train_loss: NonNegative | None = None
    val_loss: NonNegative
    val_metric: Finite


class FinalMetrics(StrictModel):
    """Metrics of the returned (best) weights on validation and, if any, test data."""

    val_loss: NonNegative
    val_metric: Finite
    test_loss: NonNegative | None = None
    test_metric: Finite | None = None


class ExampleCounts(StrictModel):
    """How many examples each split held (sequences, for language modelling)."""

    train: Count
    validation: Count
    test: Count


class TensorStats(StrictModel):
    """Optimizer statistics of one parameter tensor, averaged over sampled steps.

    ``grad_rms`` is the root mean square of the gradient; ``update_ratio`` is
    ``||delta w|| / ||w||`` for one optimizer step; ``second_moment_rms`` is the root
    mean square of Adam's bias-corrected second moment at the end of training (null
    for SGD).
    """

    name: TensorName
    numel: Annotated[int, Field(ge=1, le=10**12)]
    grad_rms: NonNegative
    update_ratio: NonNegative
    second_moment_rms: NonNegative | None = None


class Evidence(StrictModel):
    """What happened when a device ran a recipe on its local data.

    ``diverged``: the loss went non-finite (or past :data:`MAX_MAGNITUDE`) at step
    ``steps``, where training stopped. The curve then ends on a point at that step
    holding the worst values, and so do the final metrics (:func:`diverged_final`).
    Written out only when true, so evidence from before the field existed keeps its
    canonical bytes and digest.
    """

    curve: Annotated[list[CurvePoint], Field(min_length=1, max_length=MAX_CURVE_POINTS)]
    final: FinalMetrics
    num_examples: ExampleCounts
    steps: Annotated[int, Field(ge=0, le=MAX_STEPS)]
    best_step: Steps
    stopped_early: bool
    wall_seconds: Annotated[float, Field(ge=0.0, le=1e8)]
    optimizer_stats: Annotated[list[TensorStats], Field(max_length=MAX_TENSORS)] = []
    diverged: Annotated[bool, Field(exclude_if=lambda v: v is False)] = False
    #: ``exact``: measured values. Under a ``privacy`` section: ``noised`` (losses and
    #: metrics at public steps with Gaussian noise; counts, timings and optimizer
    #: statistics not reported) or ``withheld`` (placeholders only: a seed trajectory
    #: shares coefficients, and its evidence is not released). Written out only when
    #: not ``exact``, so earlier evidence keeps its digest.
    release: Annotated[Literal["exact", "noised", "withheld"],
                       Field(exclude_if=lambda v: v == "exact")] = "exact"


#: The loss a diverged run reports: the schema's bound, the worst value it can hold.
WORST_LOSS = MAX_MAGNITUDE


def reportable(value: float) -> bool:
    """Whether a loss or metric fits the schema: finite and within its bound. A
    training or validation loss that does not means the run diverged."""
    return math.isfinite(value) and abs(value) <= MAX_MAGNITUDE


def worst_metric(higher_is_better: bool) -> float:
    """The worst value of a task's metric: 0 for accuracy and macro-F1, the bound for
    perplexity."""
    return 0.0 if higher_is_better else MAX_MAGNITUDE


def diverged_point(step: int, higher_is_better: bool) -> CurvePoint:
    """The point a diverged run's curve ends on: the worst losses and metric at ``step``."""
    return CurvePoint(step=step, train_loss=WORST_LOSS, val_loss=WORST_LOSS,
                      val_metric=worst_metric(higher_is_better))


def diverged_final(higher_is_better: bool, has_test: bool) -> FinalMetrics:
    """A diverged run's final metrics: the worst, on validation and (if any) test data."""
    worst = worst_metric(higher_is_better)
    return FinalMetrics(val_loss=WORST_LOSS, val_metric=worst,
                        test_loss=WORST_LOSS if has_test else None,
                        test_metric=worst if has_test else None)


class Lineage(StrictModel):
    """Where a recipe came from: its parents' digests and the step that made it."""

    parents: Annotated[list[Digest], Field(max_length=4096)] = []
    round: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    method: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._+-]{0,63}$")]
    producer: KeyId | None = None
    created: AwareDatetime | None = None


__all__ = [
    "MAX_CURVE_POINTS",
    "MAX_MAGNITUDE",
    "WORST_LOSS",
    "CurvePoint",
    "Evidence",
    "ExampleCounts",
    "FinalMetrics",
    "Lineage",
    "TensorStats",
    "diverged_final",
    "diverged_point",
    "reportable",
    "worst_metric",
]
