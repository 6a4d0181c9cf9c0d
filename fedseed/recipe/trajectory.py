"""The ``trajectory`` section: a shared model written as seeds and scalars.

``w = w0 - sum_k c_k z_k``: ``w0`` is the recipe's own initialisation, ``z_k`` the
Gaussian perturbation that seed ``k`` of the pool generates (one value per trainable
parameter, in a pinned order, from a pinned generator), ``c_k`` one float32
coefficient per seed. Any device rebuilds ``w`` bit for bit from the recipe alone
(:mod:`fedseed.trajectory.replay`).

A meta-recipe carries ``coefficients``; a client recipe carries ``update``, the
per-seed sums of its zeroth-order steps (``lr * g`` for every step that used seed
``k``), and no coefficients: its parent's digest names the model it started from.
Numbers travel as base64 of little-endian float32 (and uint16 seed indices), so
4,096 coefficients are 21,848 characters instead of ~60,000 as JSON numbers.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, StringConstraints, model_validator

from fedseed.defaults import TRAJECTORY
from fedseed.recipe._base import Seed, StrictModel

MAX_POOL = 4096
_B64 = StringConstraints(max_length=4 * ((MAX_POOL * 4 + 2) // 3),
                         pattern=r"^[A-Za-z0-9+/]*={0,2}$")


def _encode(values: np.ndarray, dtype: str) -> str:
    return base64.b64encode(np.asarray(values, dtype=dtype).tobytes()).decode("ascii")


def _decode(text: str, dtype: str) -> np.ndarray:
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error as e:
        raise ValueError(f"not base64: {e}") from e
    size = np.dtype(dtype).itemsize
    if len(raw) % size:
        raise ValueError(f"{len(raw)} bytes is not a whole number of "
                         f"{np.dtype(dtype).name} values")
    return np.frombuffer(raw, dtype=dtype)


def encode_floats(values: np.ndarray) -> str:
    """Base64 of little-endian float32."""
    return _encode(values, "<f4")


def decode_floats(text: str) -> np.ndarray:
    """Little-endian float32 from base64 (raises ``ValueError`` on bad input)."""
    return decode_values(text, "float32")


#: Wire types of coefficient vectors: little-endian IEEE float32 or float16.
WIRE_DTYPES = {"float32": "<f4", "float16": "<f2"}


def encode_values(values: np.ndarray, dtype: str) -> str:
    """Base64 of ``values`` as little-endian ``dtype`` (``float32`` or ``float16``);
    a value that does not fit ``dtype`` is a ``ValueError``, not a silent inf."""
    wire = WIRE_DTYPES[dtype]
    with np.errstate(over="ignore"):
        cast = np.asarray(values, dtype=wire)
    if not np.all(np.isfinite(cast)):
        raise ValueError(f"a value does not fit {dtype}")
    return base64.b64encode(cast.tobytes()).decode("ascii")


def decode_values(text: str, dtype: str) -> np.ndarray:
    """float32 values from base64 of little-endian ``dtype`` (exact: float16 widens
    without rounding, so every device replays the same numbers)."""
    values = _decode(text, WIRE_DTYPES[dtype]).astype(np.float32)
    if not np.all(np.isfinite(values)):
        raise ValueError("holds a non-finite value")
    return values


def encode_indices(values: np.ndarray) -> str:
    """Base64 of little-endian uint16."""
    return _encode(values, "<u2")


def decode_indices(text: str) -> np.ndarray:
    """Little-endian uint16 from base64."""
    return _decode(text, "<u2").astype(np.int64)


class SeedUpdate(StrictModel):
    """What one client's zeroth-order steps moved, per seed: sums of ``lr * g``."""

    seeds: Annotated[str, _B64]  # distinct seed indices, ascending (uint16)
    sums: Annotated[str, _B64]  # one float32 per index
    steps: Annotated[int, Field(ge=0, le=10_000_000)]

    @model_validator(mode="after")
    def _aligned(self) -> SeedUpdate:
        seeds, sums = decode_indices(self.seeds), decode_floats(self.sums)
        if len(seeds) != len(sums):
            raise ValueError(f"{len(seeds)} seeds but {len(sums)} sums")
        if len(seeds) and not np.all(np.diff(seeds) > 0):
            raise ValueError("seeds must be distinct and ascending")
        return self


class Trajectory(StrictModel):
    """The seed pool, its generator, the zeroth-order step, and the coefficients."""

    generator: Literal["torch-cpu-mt19937"] = "torch-cpu-mt19937"
    #: torch major.minor that generated the pool: replay elsewhere is refused, since
    #: bit-exactness is only promised for one generator implementation.
    generator_version: Annotated[str, StringConstraints(pattern=r"^\d+\.\d+$")]
    distribution: Literal["gaussian"] = "gaussian"
    dtype: Literal["float32"] = "float32"
    pool_size: Annotated[int, Field(ge=1, le=MAX_POOL)]
    base_seed: Seed = 0
    epsilon: Annotated[float, Field(gt=0.0, le=1.0)] = TRAJECTORY.epsilon
    lr: Annotated[float, Field(gt=0.0, le=10.0)] = TRAJECTORY.lr
    server_lr: Annotated[float, Field(gt=0.0, le=100.0)] = TRAJECTORY.server_lr
    steps: Annotated[int, Field(ge=1, le=1_000_000)] = TRAJECTORY.steps
    seeds_per_step: Annotated[int, Field(ge=1, le=MAX_POOL)] = TRAJECTORY.seeds_per_step
    sampling: Literal["uniform", "pro"] = TRAJECTORY.sampling  # type: ignore[assignment]
    pro_alpha: Annotated[float, Field(ge=0.0, le=100.0)] = 1.0
    coefficients: Annotated[str, _B64] | None = None
    update: SeedUpdate | None = None

    @model_validator(mode="after")
    def _fits_the_pool(self) -> Trajectory:
        if self.coefficients is not None:
            count = len(decode_floats(self.coefficients))
            if count != self.pool_size:
                raise ValueError(f"coefficients hold {count} values for a pool of "
                                 f"{self.pool_size}")
        if self.update is not None:
            seeds = decode_indices(self.update.seeds)
            if len(seeds) and int(seeds.max()) >= self.pool_size:
                raise ValueError(f"update names seed {int(seeds.max())} outside the pool "
                                 f"of {self.pool_size}")
        if self.seeds_per_step > self.pool_size:
            raise ValueError(f"seeds_per_step {self.seeds_per_step} exceeds pool_size "
                             f"{self.pool_size}")
        return self

    def coefficient_array(self) -> np.ndarray:
        """The coefficients (zeros when none are set yet)."""
        if self.coefficients is None:
            return np.zeros(self.pool_size, dtype=np.float32)
        return decode_floats(self.coefficients)
