"""Shared pydantic configuration and bounded scalar types for recipe models.

Every recipe model is frozen (recipes are values), strict (no silent coercion of
``"3"`` into ``3``) and closed (unknown fields are rejected, so a typo never passes
as an ignored extra). Every number has bounds: a recipe is untrusted input that a
device will execute.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

MAX_STEPS = 1_000_000
MAX_SEED = 2**63 - 1
#: Largest magnitude of a reported number (a loss, a metric, an optimizer statistic).
#: A run whose loss leaves this range has diverged (see ``Evidence.diverged``).
MAX_MAGNITUDE = 1e12


class StrictModel(BaseModel):
    """Base of every recipe model: frozen, strict, unknown fields rejected."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        allow_inf_nan=False,
        validate_default=True,
    )


Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]*$"),
]
"""A recipe or component name: lowercase letters, digits, ``.``, ``_``, ``-``."""

ShortText = Annotated[str, StringConstraints(max_length=512)]
Digest = Annotated[str, StringConstraints(pattern=r"^sha256:[0-9a-f]{64}$")]
KeyId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
DropoutRate = Annotated[float, Field(ge=0.0, lt=1.0)]
Steps = Annotated[int, Field(ge=0, le=MAX_STEPS)]
PositiveSteps = Annotated[int, Field(ge=1, le=MAX_STEPS)]
LearningRate = Annotated[float, Field(gt=0.0, le=10.0)]
WeightDecay = Annotated[float, Field(ge=0.0, le=1.0)]
Finite = Annotated[float, Field(ge=-MAX_MAGNITUDE, le=MAX_MAGNITUDE)]
NonNegative = Annotated[float, Field(ge=0.0, le=MAX_MAGNITUDE)]
