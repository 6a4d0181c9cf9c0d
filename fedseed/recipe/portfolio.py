"""Meta-recipe sections: the configurations a meta-recipe is weighing (``portfolio``)
and the optimizer state it hands devices to start from (``warm_start``).

Both are optional top-level sections, absent from every recipe that does not use
them, so they change no existing digest. They are part of the signed bytes: a device
can see (and a verifier can check) exactly which configurations the server was
choosing between and with what weights, not only the one it recommends.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from fedseed.recipe._base import Finite, Name, NonNegative, PositiveSteps, Probability, StrictModel
from fedseed.recipe.evidence import TensorName
from fedseed.recipe.search import Choice, Scalar, SearchPath, _check

MAX_CANDIDATES = 64
MAX_WARM_TENSORS = 1024


class Candidate(StrictModel):
    """One configuration the meta-recipe is weighing.

    ``weight`` is its share when configurations are dealt to devices (FedEx's
    theta; equal shares for the survivors of successive halving). ``score`` is the
    aggregated validation loss the server last saw for it, if any (lower is better).
    """

    assignment: Annotated[dict[SearchPath, Scalar], Field(max_length=16)]
    weight: Probability
    score: Finite | None = None

    @model_validator(mode="after")
    def _values_fit_their_paths(self) -> Candidate:
        for path, value in self.assignment.items():
            problem = _check(path, Choice(values=[value]))
            if problem:
                raise ValueError(f"assignment.{path}: {problem}")
        return self


class Portfolio(StrictModel):
    """The configurations a meta-recipe deals to devices next round, with weights.

    ``method`` names the aggregator that wrote it; ``stage`` is its own round
    counter (successive halving's rung); ``group_size`` is how many devices each
    dealt configuration should reach at least (a median of three resists one liar,
    a median of two does not).
    """

    method: Name
    stage: Annotated[int, Field(ge=0, le=10_000)] = 0
    group_size: Annotated[int, Field(ge=1, le=64)] = 1
    candidates: Annotated[list[Candidate], Field(min_length=1, max_length=MAX_CANDIDATES)]

    @model_validator(mode="after")
    def _weights_are_a_distribution(self) -> Portfolio:
        total = sum(c.weight for c in self.candidates)
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"candidate weights sum to {total:.6g}, not 1")
        return self


class WarmStart(StrictModel):
    """Adam state to start from instead of zeros: per-tensor second-moment RMS.

    Pooled from clients' optimizer statistics. A device fills each tensor's second
    moment with ``rms**2`` and starts its step count at ``equivalent_steps``, as if
    it had already seen that many gradients of that size: early steps are then
    scaled by a realistic denominator instead of the first few noisy gradients.
    """

    kind: Literal["adam-second-moment"] = "adam-second-moment"
    equivalent_steps: PositiveSteps = 100
    second_moment_rms: Annotated[dict[TensorName, NonNegative],
                                 Field(min_length=1, max_length=MAX_WARM_TENSORS)]
