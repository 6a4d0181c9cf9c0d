"""The seed pool: seed ``k`` of a pool generates one Gaussian perturbation ``z_k`` of
a model's trainable parameters, identically in every process.

Pinned: the generator (a CPU ``torch.Generator``, Mersenne Twister, seeded with
:func:`seed_of`), float32, and the order (``named_parameters()`` order, each tensor
drawn in full before the next). Perturbations are generated one tensor at a time and
applied in place, so nothing larger than the largest tensor is ever allocated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fedseed.errors import RecipeError
from fedseed.recipe.trajectory import Trajectory

if TYPE_CHECKING:
    import torch

_MIX = 0x9E3779B97F4A7C15  # golden-ratio increment (splitmix64): seeds far apart


def seed_of(base_seed: int, k: int) -> int:
    """The generator seed of pool entry ``k`` (a 63-bit splitmix64 mix)."""
    z = (base_seed + (k + 1) * _MIX) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return (z ^ (z >> 31)) & 0x7FFFFFFFFFFFFFFF


def torch_version() -> str:
    """major.minor of the running torch."""
    import torch

    return ".".join(torch.__version__.split("+")[0].split(".")[:2])


def check_generator(trajectory: Trajectory) -> None:
    """Refuse to replay a pool made by another generator implementation."""
    if trajectory.generator_version != torch_version():
        raise RecipeError(
            f"trajectory.generator_version {trajectory.generator_version}: this pool was "
            f"generated with torch {trajectory.generator_version} and bit-exact replay is "
            f"only promised with the same generator; this process has torch "
            f"{torch_version()}")


def trainable(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The parameters a trajectory moves, in the pinned order."""
    return [p for _, p in model.named_parameters() if p.requires_grad]


def add_perturbation(params: list[torch.nn.Parameter], seed: int, scale: float) -> None:
    """``w += scale * z(seed)``, one tensor at a time, in place."""
    import torch

    generator = torch.Generator(device="cpu").manual_seed(seed)
    with torch.no_grad():
        for p in params:
            z = torch.randn(p.shape, generator=generator, dtype=torch.float32)
            p.add_(z, alpha=scale)
