"""The ``projection`` section: first-order seed projection (after Ferret, Shu et al.,
ICML 2025), a shared model written as a chain of per-round coefficient vectors.

Round ``r``'s meta-recipe holds that round's aggregated coefficients ``a_r`` and names
the previous round's meta-recipe (``previous``), so the shared model is

    w_r = w0 + sum_{s=1..r} server_lr * sum_g scale_g * B_{s,g}(a_{s,g})

where ``B_{s,g}`` rebuilds a tensor-sized update from ``K_g`` coefficients with the
basis the section names for tensor ``g`` (fresh seeds each round):

* ``gaussian``: ``sum_k a_k z_{s,g,k}``, ``z`` a seeded standard Gaussian vector,
  ``scale_g = D_g / K_g`` (unbiased: ``E[z z^T] = I``);
* ``count-sketch``: bucket ``h(j)``, sign ``s(j)`` from a seeded integer hash
  (FetchSGD, Rothchild et al., ICML 2020); ``B(a)_j = s(j) a_{h(j)}``, ``scale_g = 1``.

A client reply carries ``update`` (its own projected ``w_local - w_r`` on round
``r + 1``'s bases) and no coefficients. Numbers are base64 little-endian ``dtype``:
float32, or float16 for half the bytes (rounded once, on the sender; replay widens them
exactly).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from fedseed.recipe._base import Digest, Seed, StrictModel
from fedseed.recipe.trajectory import decode_values

#: Most coefficients one round may carry (all tensors together).
MAX_COEFFICIENTS = 65_536
_B64 = StringConstraints(max_length=4 * ((MAX_COEFFICIENTS * 4 + 2) // 3),
                         pattern=r"^[A-Za-z0-9+/]*={0,2}$")
ParamName = Annotated[str, StringConstraints(min_length=1, max_length=200,
                                             pattern=r"^[A-Za-z0-9_.]+$")]


class Group(StrictModel):
    """One trainable tensor: its name, element count, basis and coefficient count."""

    name: ParamName
    size: Annotated[int, Field(ge=1, le=2**40)]
    basis: Literal["gaussian", "count-sketch"]
    k: Annotated[int, Field(ge=1, le=MAX_COEFFICIENTS)]

    @model_validator(mode="after")
    def _k_fits(self) -> Group:
        if self.basis == "gaussian" and self.k > self.size:
            raise ValueError(f"group {self.name}: k {self.k} exceeds its size {self.size} "
                             "(a gaussian basis needs k <= size)")
        return self


class Projection(StrictModel):
    """Bases, their generator, the server learning rate, and one round's numbers."""

    method: Literal["first-order"] = "first-order"
    generator: Literal["torch-cpu-mt19937"] = "torch-cpu-mt19937"
    #: torch major.minor of the Gaussian generator: replay elsewhere is refused.
    generator_version: Annotated[str, StringConstraints(pattern=r"^\d+\.\d+$")]
    #: Wire type of ``coefficients`` and ``update``.
    dtype: Literal["float32", "float16"] = "float32"
    base_seed: Seed = 0
    #: The round whose bases ``coefficients`` (or ``update``) use; 0: ``w = w0``.
    round: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    server_lr: Annotated[float, Field(gt=0.0, le=100.0)] = 1.0
    groups: Annotated[list[Group], Field(min_length=1, max_length=4096)]
    #: Digest of the meta-recipe of round ``round - 1`` (None at round 0).
    previous: Digest | None = None
    coefficients: Annotated[str, _B64] | None = None
    update: Annotated[str, _B64] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Projection:
        total = self.total_k
        if total > MAX_COEFFICIENTS:
            raise ValueError(f"groups hold {total} coefficients, more than "
                             f"{MAX_COEFFICIENTS}")
        names = [g.name for g in self.groups]
        if len(set(names)) != len(names):
            raise ValueError("groups name a tensor twice")
        for field_name in ("coefficients", "update"):
            text = getattr(self, field_name)
            if text is not None and (n := len(decode_values(text, self.dtype))) != total:
                raise ValueError(f"{field_name} hold {n} {self.dtype} values for {total} "
                                 "bases")
        if self.round == 0 and (self.coefficients is not None or self.previous is not None):
            raise ValueError("round 0 is w0: it takes no coefficients and no previous")
        if self.round > 0 and self.coefficients is not None and self.previous is None:
            raise ValueError(f"round {self.round} coefficients need previous (the digest "
                             "of the round before)")
        if self.coefficients is not None and self.update is not None:
            raise ValueError("a projection holds coefficients (meta) or an update "
                             "(client), not both")
        return self

    @property
    def total_k(self) -> int:
        """Coefficients per round, all tensors together."""
        return sum(g.k for g in self.groups)
