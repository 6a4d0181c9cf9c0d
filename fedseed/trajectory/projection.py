"""First-order seed projection (Ferret: Shu et al., ICML 2025): plan the bases,
project a client's update onto them, and apply a round (or a chain of rounds) back.

See :mod:`fedseed.recipe.projection` for the format and :mod:`fedseed.trajectory.bases`
for what is pinned. Planning is a pure function of the model's tensor sizes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np

from fedseed.errors import RecipeError
from fedseed.recipe.projection import Group, Projection
from fedseed.recipe.trajectory import decode_values
from fedseed.trajectory.bases import (
    apply_gaussian,
    apply_sketch,
    basis_seed,
    project_gaussian,
    project_sketch,
)
from fedseed.trajectory.pool import torch_version

if TYPE_CHECKING:
    import torch

#: Tensors with more elements than this get a Count Sketch (a dense Gaussian basis
#: would cost K x D generated numbers per round).
DENSE_LIMIT = 1_000_000


def plan_groups(sizes: Sequence[tuple[str, int]], total_k: int, *, floor: int = 8,
                dense_limit: int = DENSE_LIMIT) -> list[Group]:
    """Split ``total_k`` coefficients over tensors proportionally to their size, at
    least ``floor`` each (at most the tensor's size for a Gaussian basis)."""
    if total_k < 1:
        raise RecipeError(f"projection: total K {total_k} must be at least 1")
    whole = sum(size for _, size in sizes)
    groups = []
    for name, size in sizes:
        basis: Literal["gaussian", "count-sketch"] = (
            "count-sketch" if size > dense_limit else "gaussian")
        k = max(floor, round(total_k * size / whole))
        if basis == "gaussian":
            k = min(k, size)
        groups.append(Group(name=name, size=size, basis=basis, k=max(1, k)))
    return groups


def new_projection(model: torch.nn.Module, total_k: int, *, base_seed: int = 0,
                   server_lr: float = 1.0, floor: int = 8,
                   dense_limit: int = DENSE_LIMIT, dtype: str = "float32") -> Projection:
    """The round-0 section for ``model`` (``w = w0``)."""
    sizes = [(name, p.numel()) for name, p in model.named_parameters() if p.requires_grad]
    return Projection(generator_version=torch_version(), base_seed=base_seed,
                      server_lr=server_lr, dtype=dtype,  # type: ignore[arg-type]
                      groups=plan_groups(sizes, total_k, floor=floor, dense_limit=dense_limit))


def check_generator(projection: Projection) -> None:
    """Refuse bases made by another torch generator implementation."""
    if projection.generator_version != torch_version():
        raise RecipeError(
            f"projection.generator_version {projection.generator_version}: bit-exact replay "
            f"is only promised with the same torch generator; this process has torch "
            f"{torch_version()}")


def check_projection(model: torch.nn.Module, projection: Projection) -> list[torch.Tensor]:
    """The model's tensors in the section's order; refuse another generator or shape."""
    check_generator(projection)
    params = dict(model.named_parameters())
    out = []
    for g in projection.groups:
        p = params.get(g.name)
        if p is None or p.numel() != g.size:
            found = "missing" if p is None else f"{p.numel()} values"
            raise RecipeError(f"projection.groups: tensor {g.name} of {g.size} values is "
                              f"{found} in this model; the recipe does not fit it")
        out.append(p)
    return out


def _seeds(projection: Projection, round_: int, index: int, group: Group) -> list[int]:
    return [basis_seed(projection.base_seed, round_, index, k) for k in range(group.k)]


def project(deltas: Sequence[torch.Tensor], projection: Projection,
            round_: int) -> np.ndarray:
    """Coefficients of the per-tensor updates ``deltas`` on round ``round_``'s bases."""
    parts = []
    for index, (group, delta) in enumerate(zip(projection.groups, deltas, strict=True)):
        if group.basis == "gaussian":
            parts.append(project_gaussian(delta, _seeds(projection, round_, index, group)))
        else:
            parts.append(project_sketch(delta, basis_seed(projection.base_seed, round_,
                                                          index, 0), group.k))
    return np.concatenate(parts).astype(np.float32)


def scale_of(group: Group) -> float:
    """The unbiased rescale: ``D/K`` for a Gaussian basis, 1 for a Count Sketch."""
    return group.size / group.k if group.basis == "gaussian" else 1.0


def apply_round(model: torch.nn.Module, projection: Projection,
                coefficients: np.ndarray | None = None) -> None:
    """``w += server_lr * sum_g scale_g B_{r,g}(a_g)`` for the section's own round."""
    if coefficients is None:
        if projection.coefficients is None:
            return
        coefficients = decode_values(projection.coefficients, projection.dtype)
    params = check_projection(model, projection)
    offset = 0
    for index, (group, p) in enumerate(zip(projection.groups, params, strict=True)):
        a = coefficients[offset:offset + group.k]
        offset += group.k
        scale = projection.server_lr * scale_of(group)
        if group.basis == "gaussian":
            apply_gaussian(p, _seeds(projection, projection.round, index, group), a, scale)
        else:
            apply_sketch(p, basis_seed(projection.base_seed, projection.round, index, 0),
                         a, scale)
