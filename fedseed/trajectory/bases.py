"""Seeded bases of first-order seed projection, one tensor at a time.

Pinned, so every process rebuilds the same update: seeds come from
:func:`basis_seed` (the recipe's ``base_seed``, the round, the tensor's index in
``named_parameters()`` order, the basis index); Gaussian vectors from a CPU
``torch.Generator`` (Mersenne Twister, float32, one generator per basis vector, so
memory stays at one tensor whatever ``K``); Count Sketch buckets and signs from a
splitmix64 integer hash of the coordinate index (numpy uint64, no generator: the same
on every platform, and computable for the nonzero coordinates only). Updates are
accumulated in float32 in ascending basis order (the order is part of the format).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from fedseed.trajectory.pool import seed_of

if TYPE_CHECKING:
    import torch

_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def basis_seed(base_seed: int, round_: int, group: int, k: int) -> int:
    """The seed of basis ``k`` of tensor ``group`` in round ``round_`` (63 bits)."""
    return seed_of(seed_of(seed_of(base_seed, round_), group), k)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, elementwise on uint64 (wraps modulo 2**64)."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def sketch_hash(seed: int, index: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Bucket (``0..k-1``) and sign (``+-1``) of coordinates ``index`` of a tensor."""
    with np.errstate(over="ignore"):
        h = _mix(index.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
                 + np.uint64(seed & 0xFFFFFFFFFFFFFFFF))
    bucket = (h % np.uint64(k)).astype(np.int64)
    sign = np.where((h >> np.uint64(63)) == 1, -1.0, 1.0).astype(np.float32)
    return bucket, sign


def gaussian(seed: int, size: int) -> torch.Tensor:
    """The standard Gaussian basis vector of ``seed`` (float32, ``size`` values)."""
    import torch

    generator = torch.Generator(device="cpu").manual_seed(seed)
    return torch.randn(size, generator=generator, dtype=torch.float32)


def project_gaussian(delta: torch.Tensor, seeds: list[int],
                     chunk_numbers: int = 1 << 22) -> np.ndarray:
    """``a_k = <delta, z_k> / ||z_k||^2`` for each seed, a block of basis vectors at a
    time (at most ``chunk_numbers`` generated numbers held at once)."""
    import torch

    flat = delta.detach().reshape(-1).to(torch.float32)
    rows = max(1, chunk_numbers // max(1, flat.numel()))
    out = np.empty(len(seeds), dtype=np.float32)
    for start in range(0, len(seeds), rows):
        block = torch.stack([gaussian(s, flat.numel()) for s in seeds[start:start + rows]])
        dots = (block @ flat).double() / (block * block).sum(dim=1).double()
        out[start:start + len(block)] = dots.numpy().astype(np.float32)
    return out


def apply_gaussian(param: torch.Tensor, seeds: list[int], coefficients: np.ndarray,
                   scale: float) -> None:
    """``param += scale * sum_k a_k z_k``, in place, float32, ascending ``k``."""
    import torch

    flat = param.data.view(-1)
    with torch.no_grad():
        for s, a in zip(seeds, coefficients.tolist(), strict=True):
            if a != 0.0:
                flat.add_(gaussian(s, flat.numel()), alpha=float(np.float32(scale * a)))


def project_sketch(delta: torch.Tensor, seed: int, k: int) -> np.ndarray:
    """Count Sketch of ``delta``: ``sketch_b = sum_{h(j)=b} s(j) delta_j``. Only the
    nonzero coordinates are hashed (O(nnz))."""
    flat = delta.detach().reshape(-1).cpu().numpy().astype(np.float64)
    index = np.flatnonzero(flat)
    bucket, sign = sketch_hash(seed, index, k)
    out = np.zeros(k, dtype=np.float64)
    np.add.at(out, bucket, sign * flat[index])
    return out.astype(np.float32)


def apply_sketch(param: torch.Tensor, seed: int, sketch: np.ndarray, scale: float,
                 chunk: int = 1 << 20) -> None:
    """``param_j += scale * s(j) * sketch_{h(j)}``, in place, in chunks (O(D))."""
    import torch

    flat = param.data.view(-1)
    values = (np.float32(scale) * sketch.astype(np.float32)).astype(np.float32)
    with torch.no_grad():
        for start in range(0, flat.numel(), chunk):
            index = np.arange(start, min(start + chunk, flat.numel()), dtype=np.int64)
            bucket, sign = sketch_hash(seed, index, len(sketch))
            flat[start:start + len(index)] += torch.from_numpy(sign * values[bucket])
