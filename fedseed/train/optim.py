"""Optimizers named by a recipe, built through a lookup table."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

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
