"""Learning-rate schedules as pure functions of the step."""

from __future__ import annotations

import math

from fedseed.recipe.training import Schedule


def lr_multiplier(schedule: Schedule, max_steps: int, step: int) -> float:
    """Multiplier of the base learning rate for optimizer step ``step`` (0-based).

    Linear warmup from ``1 / (warmup + 1)`` to 1 over ``warmup_steps`` steps, then
    ``constant``, ``linear`` or ``cosine`` decay to ``min_lr_ratio`` at ``max_steps``.
    """
    warmup = schedule.warmup_steps
    if step < warmup:
        return (step + 1) / (warmup + 1)
    if schedule.name == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, max_steps - warmup))
    floor = schedule.min_lr_ratio
    if schedule.name == "linear":
        return 1.0 - (1.0 - floor) * progress
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
