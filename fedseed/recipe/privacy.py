"""The ``privacy`` section: a federation's differential-privacy settings, signed in
every meta-recipe so that each device sees what protects it before it trains, and the
privacy the federation has spent so far.

What one client sends in a round is clipped to a bound, then Gaussian noise with
standard deviation ``noise_multiplier x sensitivity`` is added, on the device
(``mode = "local"``) or by the server to the sum over clients (``"central"``, a
trusted server). What is clipped depends on what the federation shares
(:mod:`fedseed.privacy.mechanisms`):

* seed trajectories (zeroth- and first-order): the client's coefficient vector, to L2
  norm ``clip``; its evidence is withheld;
* recipes: the validation loss (clipped to ``[0, loss_bound]``) and metric at
  ``curve_points`` fixed fractions of the step budget.

``epsilon`` and ``rounds`` are what an accountant from a maintained library
(:mod:`fedseed.privacy.accountant`) says the rounds so far have spent, at ``delta``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from fedseed.recipe._base import StrictModel

Positive = Annotated[float, Field(gt=0.0, le=1e6)]


class Privacy(StrictModel):
    """Differential-privacy settings (client-level) and the budget spent so far."""

    mechanism: Literal["gaussian"] = "gaussian"
    #: Where the noise is added: by a trusted server to the sum of clipped client
    #: contributions (central), or by every device to its own (local).
    mode: Literal["central", "local"] = "central"
    #: Standard deviation of the noise over the sensitivity of one client's release.
    noise_multiplier: Annotated[float, Field(gt=0.0, le=1e4)]
    #: L2 bound of one client's coefficient vector (seed-trajectory modes).
    clip: Positive = 1.0
    #: Evidence: validation losses are clipped to [0, loss_bound] before noise.
    loss_bound: Positive = 1.0
    #: Evidence: losses and metrics are released at this many fixed fractions of the
    #: step budget (j / curve_points for j = 1..curve_points).
    curve_points: Annotated[int, Field(ge=1, le=16)] = 2
    delta: Annotated[float, Field(gt=0.0, lt=1.0)]
    #: The federation stops before a round that would take epsilon past this.
    target_epsilon: Positive | None = None
    #: Accounting: Renyi DP (Google's dp-accounting, through Flower's accountant),
    #: without amplification by client sampling (valid for any sampler).
    accountant: Literal["rdp"] = "rdp"
    sampling: Literal["no-amplification"] = "no-amplification"
    population: Annotated[int, Field(ge=1, le=10**9)]
    #: Rounds accounted so far, and the epsilon they spent at ``delta``.
    rounds: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    epsilon: Annotated[float, Field(ge=0.0, le=1e300)] = 0.0

    @model_validator(mode="after")
    def _consistent(self) -> Privacy:
        if self.target_epsilon is not None and self.epsilon > self.target_epsilon * (1 + 1e-9):
            raise ValueError(f"epsilon {self.epsilon:.4g} spent exceeds target_epsilon "
                             f"{self.target_epsilon:.4g}")
        if (self.rounds == 0) != (self.epsilon == 0.0):
            raise ValueError(f"{self.rounds} round(s) accounted but epsilon {self.epsilon:g}: "
                             "a round spends some epsilon, and none is spent without one")
        if self.delta > 1.0 / self.population * (1 + 1e-9):
            # (0, 1/N)-DP allows publishing one random device's data in the clear.
            raise ValueError(f"delta {self.delta:g} exceeds 1/population (1/"
                             f"{self.population}); use a smaller delta")
        return self


__all__ = ["Privacy"]
