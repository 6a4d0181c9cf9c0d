"""Optimizers named by a recipe, built through a lookup table."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from fedseed.recipe.portfolio import WarmStart
from fedseed.recipe.training import SGD, Adam, AdamW

_BUILDERS: dict[str, Callable[[Iterable[torch.nn.Parameter], Any], torch.optim.Optimizer]] = {
    "adamw": lambda params, o: torch.optim.AdamW(
        params, lr=o.lr, betas=o.betas, eps=o.eps, weight_decay=o.weight_decay),
    "adam": lambda params, o: torch.optim.Adam(
        params, lr=o.lr, betas=o.betas, eps=o.eps, weight_decay=o.weight_decay),
    "sgd": lambda params, o: torch.optim.SGD(
        params, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov,
        weight_decay=o.weight_decay),
}


def build_optimizer(spec: AdamW | Adam | SGD, model: torch.nn.Module) -> torch.optim.Optimizer:
    """The torch optimizer ``spec`` describes, over ``model``'s trainable parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    return _BUILDERS[spec.name](params, spec)


def warm_start_adam(optimizer: torch.optim.Optimizer, model: torch.nn.Module,
                    warm: WarmStart) -> int:
    """Fill Adam's second moments from a meta-recipe's pooled per-tensor RMS.

    The step count starts at ``warm.equivalent_steps`` and the stored moment is
    scaled by that step's bias correction, so the bias-corrected second moment the
    first update divides by is ``rms**2``; the first moment stays zero. Tensors the
    meta-recipe does not name start from zeros as usual. Returns how many tensors
    were warm-started.
    """
    if not isinstance(optimizer, (torch.optim.Adam, torch.optim.AdamW)):
        return 0
    beta2 = optimizer.defaults["betas"][1]
    steps = warm.equivalent_steps
    correction = 1.0 - beta2 ** steps
    warmed = 0
    for name, param in model.named_parameters():
        rms = warm.second_moment_rms.get(name)
        if rms is None or not param.requires_grad:
            continue
        optimizer.state[param] = {
            "step": torch.tensor(float(steps)),
            "exp_avg": torch.zeros_like(param, memory_format=torch.preserve_format),
            "exp_avg_sq": torch.full_like(param, rms * rms * correction),
        }
        warmed += 1
    return warmed
