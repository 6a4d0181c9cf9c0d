"""Per-tensor optimizer statistics: the O(#tensors) evidence a client reports.

Sampling a few steps (not every step) keeps the cost negligible: the gradient RMS
and the relative update size ``||delta w|| / ||w||`` are averaged over about
``samples`` evenly spaced steps; Adam's second-moment RMS is read once at the end.
"""

from __future__ import annotations

import math

import torch

from fedseed.recipe.evidence import MAX_MAGNITUDE, TensorStats, reportable


def _sig(x: float) -> float:
    """Round to 6 significant digits: evidence, not a checkpoint.

    A number the schema cannot hold (NaN, infinite, or past its bound) saturates at
    the bound, never 0.0. For a statistic, 0.0 reads as a healthy, even idle, tensor
    and dropping the entry would hide the tensor that blew up, while the bound says
    what happened (no healthy tensor comes near it). Losses never get here unchecked:
    the training loop stops and reports divergence when one leaves the range.
    """
    return float(f"{x:.6g}") if reportable(x) else MAX_MAGNITUDE


class OptimizerStats:
    """Accumulates statistics at sampled steps; :meth:`summary` returns evidence."""

    def __init__(self, model: torch.nn.Module, max_steps: int, samples: int = 16) -> None:
        self._named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self._every = max(1, max_steps // samples)
        self._grad_sq = [0.0] * len(self._named)
        self._ratio = [0.0] * len(self._named)
        self._count = 0
        self._before: list[torch.Tensor] | None = None

    def wants(self, step: int) -> bool:
        """Whether ``step`` (0-based) is a sampled step."""
        return step % self._every == 0

    @torch.no_grad()
    def before_step(self) -> None:
        """Record gradients and a copy of the weights; call just before ``opt.step()``."""
        for i, (_, p) in enumerate(self._named):
            if p.grad is not None:
                self._grad_sq[i] += float(p.grad.pow(2).mean())
        self._before = [p.detach().clone() for _, p in self._named]

    @torch.no_grad()
    def after_step(self) -> None:
        """Record the relative size of the update just applied."""
        assert self._before is not None
        for i, ((_, p), old) in enumerate(zip(self._named, self._before, strict=True)):
            norm, delta = float(old.norm()), float((p - old).norm())
            # A zero tensor's ratio is 0 by definition, but a non-finite norm or update
            # stays non-finite (and :func:`_sig` saturates it) instead of reading as idle.
            if not (math.isfinite(norm) and math.isfinite(delta)):
                self._ratio[i] = math.nan
            elif norm > 0:
                self._ratio[i] += delta / norm
        self._before = None
        self._count += 1

    def summary(self, optimizer: torch.optim.Optimizer) -> list[TensorStats]:
        """One :class:`TensorStats` per trainable tensor."""
        n = max(1, self._count)
        betas = optimizer.defaults.get("betas")
        out = []
        for i, (name, p) in enumerate(self._named):
            second = None
            state = optimizer.state.get(p, {})
            if betas is not None and "exp_avg_sq" in state:
                step = float(state["step"])
                correction = 1.0 - betas[1] ** step if step > 0 else 1.0
                second = _sig(math.sqrt(float(state["exp_avg_sq"].mean()) / correction))
            out.append(TensorStats(
                name=name,
                numel=p.numel(),
                grad_rms=_sig(math.sqrt(self._grad_sq[i] / n)),
                update_ratio=_sig(self._ratio[i] / n),
                second_moment_rms=second,
            ))
        return out
