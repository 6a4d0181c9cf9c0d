"""What a device reports after running a recipe (evidence) and where a recipe came
from (lineage).

Evidence is O(number of tensors), never O(number of parameters): a learning curve
of at most 64 points, a handful of final metrics, and per-tensor optimizer
statistics. That is what keeps a client recipe of a transformer under 16 KB.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, Field, StringConstraints

from fedseed.recipe._base import (
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
    """What happened when a device ran a recipe on its local data."""

    curve: Annotated[list[CurvePoint], Field(min_length=1, max_length=MAX_CURVE_POINTS)]
    final: FinalMetrics
    num_examples: ExampleCounts
    steps: Annotated[int, Field(ge=0, le=MAX_STEPS)]
    best_step: Steps
    stopped_early: bool
    wall_seconds: Annotated[float, Field(ge=0.0, le=1e8)]
    optimizer_stats: Annotated[list[TensorStats], Field(max_length=MAX_TENSORS)] = []


class Lineage(StrictModel):
    """Where a recipe came from: its parents' digests and the step that made it."""

    parents: Annotated[list[Digest], Field(max_length=4096)] = []
    round: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    method: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._+-]{0,63}$")]
    producer: KeyId | None = None
    created: AwareDatetime | None = None


__all__ = [
    "MAX_CURVE_POINTS",
    "CurvePoint",
    "Evidence",
    "ExampleCounts",
    "FinalMetrics",
    "Lineage",
    "TensorStats",
]
