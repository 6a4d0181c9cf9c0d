"""Optimizer-statistics warm start: pool clients' per-tensor Adam second moments.

Clients report, per tensor, the RMS of Adam's bias-corrected second moment at the
end of training (O(number of tensors) numbers, never per-parameter state). The
meta-recipe carries the weighted median per tensor; devices start Adam from it
(:func:`fedseed.train.optim.warm_start_adam`) instead of from zeros. Diverged
replies, and statistics saturated at the schema's bound, are left out.
"""

from __future__ import annotations

from collections.abc import Sequence

from fedseed.meta.base import ClientReply
from fedseed.meta.robust import client_weights, weighted_median
from fedseed.recipe.evidence import MAX_MAGNITUDE
from fedseed.recipe.portfolio import WarmStart


def pooled_second_moments(replies: Sequence[ClientReply], robust: bool = True,
                          equivalent_steps: int = 100) -> WarmStart | None:
    """Per-tensor weighted median of the reported second-moment RMS, or ``None``."""
    values: dict[str, list[tuple[float, float]]] = {}
    for reply, weight in zip(replies, client_weights(replies, robust), strict=True):
        ev = reply.recipe.evidence
        if ev is None or ev.diverged:  # a run that blew up is no place to start Adam from
            continue
        for stats in ev.optimizer_stats:
            rms = stats.second_moment_rms
            if rms is not None and 0 < rms < MAX_MAGNITUDE:  # at the bound: saturated
                values.setdefault(stats.name, []).append((rms, weight))
    if not values:
        return None
    pooled = {name: float(f"{weighted_median([v for v, _ in pairs], [w for _, w in pairs]):.6g}")
              for name, pairs in sorted(values.items())}
    return WarmStart(equivalent_steps=equivalent_steps, second_moment_rms=pooled)
