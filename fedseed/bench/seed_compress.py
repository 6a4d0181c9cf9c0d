"""The compressors of ``fedseed bench seed-claims``, as pure functions of a state dict.

The seed roadmap's *seed* of a trained model: per tensor, its mean and standard
deviation, and for every matrix (a tensor of rank >= 2, read as rows of
``shape[0]``) the top ``k`` principal directions of its rows with their variances.
Assembly draws a new matrix with exactly those statistics: row mean, plus random
coefficients (seeded, unit variance) times each direction's standard deviation, plus
isotropic noise for the variance the ``k`` directions leave. The rows' own
coefficients are not kept: that is what makes the seed small, and what the roadmap
later found holds no knowledge.

Against it: the ablation's weaker seeds (per-tensor statistics only; one global
statistic), and the standard compressors applied to the trained weights: truncated
SVD that keeps the row coefficients (low rank), 50% magnitude pruning, int8
weights (per-tensor scale, as dynamic quantization stores them) and gzip -9.
Sizes are counted as the stored numbers need (float32: 4 bytes).
"""

from __future__ import annotations

import gzip
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

State = Mapping[str, "torch.Tensor"]


@dataclass(frozen=True)
class Compressed:
    """A reconstructed state dict and what storing its source took, in bytes."""

    state: dict[str, torch.Tensor]
    bytes: int


def _float_items(state: State) -> list[tuple[str, torch.Tensor]]:
    return [(k, v) for k, v in state.items() if v.is_floating_point()]


def unique_tensors(state: State) -> dict[str, torch.Tensor]:
    """``state`` with each storage once (the first name that holds it), floating-point
    tensors as float32: a tied output layer (the char-LM's is its embedding) is not
    stored twice."""
    seen: set[int] = set()
    out = {}
    for name, value in state.items():
        if value.data_ptr() in seen:
            continue
        seen.add(value.data_ptr())
        value = value.detach()
        out[name] = (value.float() if value.is_floating_point() else value).contiguous().clone()
    return out


def float32_bytes(state: State) -> int:
    """The floating-point tensors as raw float32."""
    return sum(4 * v.numel() for _, v in _float_items(state))


def _rows(v: torch.Tensor) -> torch.Tensor:
    return v.detach().double().reshape(v.shape[0], -1)


def _generator(seed: int, name: str) -> torch.Generator:
    import zlib

    import torch

    from fedseed.trajectory.pool import seed_of

    return torch.Generator().manual_seed(seed_of(seed, zlib.crc32(name.encode())))


def pca_seed(state: State, k: int, seed: int = 0) -> Compressed:
    """The roadmap's seed at ``k`` components, assembled (see the module docstring).
    Vectors (biases, norms) keep their mean and standard deviation."""
    import torch

    out, floats = dict(state), 0
    for name, v in _float_items(state):
        g = _generator(seed, name)
        if v.dim() < 2:
            mean, std = v.double().mean(), v.double().std() if v.numel() > 1 else 0.0
            out[name] = (mean + std * torch.randn(v.shape, generator=g, dtype=torch.float64)
                         ).to(v.dtype)
            floats += 2
            continue
        rows = _rows(v)
        n, d = rows.shape
        kk = min(k, n, d)
        mu = rows.mean(dim=0)
        centred = rows - mu
        _, s, vh = torch.linalg.svd(centred, full_matrices=False)
        sd = s[:kk] / max(1, n - 1) ** 0.5
        total = float((centred ** 2).sum()) / max(1, n - 1)
        left = max(0.0, total - float((sd ** 2).sum())) / d
        z = torch.randn((n, kk), generator=g, dtype=torch.float64)
        noise = torch.randn((n, d), generator=g, dtype=torch.float64)
        made = mu + (z * sd) @ vh[:kk] + left ** 0.5 * noise
        out[name] = made.reshape(v.shape).to(v.dtype)
        floats += kk * d + kk + d + 1  # directions, their sds, row mean, residual
    return Compressed(out, 4 * floats)


def layer_stats(state: State, seed: int = 0) -> Compressed:
    """Every tensor drawn from N(its mean, its std): the ablation's per-layer stats."""
    import torch

    out = dict(state)
    for name, v in _float_items(state):
        x = v.double()
        std = float(x.std()) if v.numel() > 1 else 0.0
        out[name] = (float(x.mean()) + std * torch.randn(
            v.shape, generator=_generator(seed, name), dtype=torch.float64)).to(v.dtype)
    return Compressed(out, 4 * 2 * len(_float_items(state)))


def global_stats(state: State, seed: int = 0) -> Compressed:
    """Matrices from one N(mean, std) over all matrix entries; vectors from one over
    all vector entries: the ablation's global stats."""
    import torch

    out = dict(state)
    for rank in ("matrix", "vector"):
        items = [(k, v) for k, v in _float_items(state) if (v.dim() >= 2) == (rank == "matrix")]
        if not items:
            continue
        allv = torch.cat([v.double().reshape(-1) for _, v in items])
        mean, std = float(allv.mean()), float(allv.std()) if allv.numel() > 1 else 0.0
        for name, v in items:
            out[name] = (mean + std * torch.randn(v.shape, generator=_generator(seed, name),
                                                  dtype=torch.float64)).to(v.dtype)
    return Compressed(out, 4 * 4)


def low_rank(state: State, k: int) -> Compressed:
    """Truncated SVD of every matrix, row coefficients kept (``U_k S_k V_k^T`` + row
    mean); vectors stored as they are."""
    import torch

    out, floats = dict(state), 0
    for name, v in _float_items(state):
        if v.dim() < 2:
            floats += v.numel()
            continue
        rows = _rows(v)
        n, d = rows.shape
        kk = min(k, n, d)
        if kk * (n + d) + d >= n * d:  # no smaller than the matrix: keep it whole
            floats += n * d
            continue
        mu = rows.mean(dim=0)
        u, s, vh = torch.linalg.svd(rows - mu, full_matrices=False)
        out[name] = (mu + (u[:, :kk] * s[:kk]) @ vh[:kk]).reshape(v.shape).to(v.dtype)
        floats += kk * (n + d) + d
    return Compressed(out, 4 * floats)


def magnitude_prune(state: State, share: float = 0.5) -> Compressed:
    """Zero the ``share`` smallest-magnitude entries of every matrix. Stored as a
    bitmap of kept entries plus their float32 values; vectors as they are."""
    import torch

    out, size = dict(state), 0
    for name, v in _float_items(state):
        if v.dim() < 2:
            size += 4 * v.numel()
            continue
        flat = v.detach().reshape(-1)
        drop = int(share * flat.numel())
        keep = torch.ones_like(flat, dtype=torch.bool)
        if drop:
            keep[torch.argsort(flat.abs())[:drop]] = False
        out[name] = torch.where(keep, flat, torch.zeros_like(flat)).reshape(v.shape)
        size += (flat.numel() + 7) // 8 + 4 * int(keep.sum())
    return Compressed(out, size)


def int8_weights(state: State) -> Compressed:
    """Every matrix as int8 with one float32 scale (symmetric, per tensor: how dynamic
    quantization stores weights); vectors stay float32."""
    import torch

    out, size = dict(state), 0
    for name, v in _float_items(state):
        if v.dim() < 2:
            size += 4 * v.numel()
            continue
        scale = float(v.detach().abs().max()) / 127 or 1.0
        q = torch.clamp(torch.round(v.detach() / scale), -127, 127)
        out[name] = (q * scale).to(v.dtype)
        size += v.numel() + 4
    return Compressed(out, size)


def gzip_bytes(state: State) -> int:
    """The float32 safetensors file, gzip -9 (lossless)."""
    from safetensors.torch import save

    raw = save({k: v.detach().float().contiguous() for k, v in _float_items(state)})
    return len(gzip.compress(raw, compresslevel=9))


def seed_bytes_of_shapes(shapes: Mapping[str, tuple[int, ...]], k: int) -> int:
    """The roadmap seed's size for tensors of these shapes (size depends on shapes
    only): for a model that is not trained here, e.g. BERT-tiny with WordPiece."""
    floats = 0
    for shape in shapes.values():
        if len(shape) < 2:
            floats += 2
            continue
        n = shape[0]
        d = 1
        for s in shape[1:]:
            d *= s
        kk = min(k, n, d)
        floats += kk * d + kk + d + 1
    return 4 * floats


__all__ = ["Compressed", "float32_bytes", "global_stats", "gzip_bytes", "int8_weights",
           "layer_stats", "low_rank", "magnitude_prune", "pca_seed", "seed_bytes_of_shapes",
           "unique_tensors"]
