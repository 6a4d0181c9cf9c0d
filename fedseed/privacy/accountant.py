"""How much privacy a federation has spent: Renyi-DP accounting by Flower's
``RdpAccountant``, which wraps Google's ``dp-accounting`` (no formula of our own).

Every round is one Gaussian release per client, with noise ``noise_multiplier`` times
that release's sensitivity (:mod:`fedseed.privacy.mechanisms`). The accountant composes
one such release per round *without* amplification by client sampling: a client
sampled in every round is the worst case, and the bound holds for any sampler
(fedseed samples a fixed number of nodes without replacement, which Poisson-sampling
analyses do not cover). Neighbouring: one client's whole data added or removed
(client-level DP, as in DP-FedAvg).
"""

from __future__ import annotations

import math
from typing import Any

from fedseed.errors import FedseedError
from fedseed.recipe.privacy import Privacy


def _accountant(privacy: Privacy) -> Any:
    try:
        from flwr.serverapp import (
            NeighboringRelation,
            PrivacyConfig,
            RdpAccountant,
            SamplingMethod,
        )

        return RdpAccountant(PrivacyConfig(
            target_delta=privacy.delta, population_size=privacy.population,
            neighboring_relation=NeighboringRelation.ADD_OR_REMOVE_ONE,
            sampling_method=SamplingMethod.NO_AMPLIFICATION))
    except ImportError as e:
        raise FedseedError(f"privacy accounting needs dp-accounting ({e}); "
                           "pip install 'flwr[dp]'") from e


def epsilon_after(privacy: Privacy, rounds: int) -> float:
    """The epsilon (at ``privacy.delta``) that ``rounds`` rounds of ``privacy``'s
    mechanism spend."""
    if rounds <= 0:
        return 0.0
    from flwr.serverapp import GaussianPrivacyEvent

    accountant = _accountant(privacy)
    accountant.compose(GaussianPrivacyEvent(noise_multiplier=privacy.noise_multiplier,
                                            sample_size=privacy.population,
                                            population_size=privacy.population),
                       count=rounds)
    return float(accountant.get_epsilon(privacy.delta))


def epsilon_of_releases(noise_multipliers: list[float], delta: float, population: int
                        ) -> float:
    """The epsilon of Gaussian releases with these noise multipliers, composed (a
    device's own ledger: the rounds it sent in, whatever each meta-recipe claimed)."""
    if not noise_multipliers:
        return 0.0
    from flwr.serverapp import GaussianPrivacyEvent

    accountant = _accountant(Privacy(noise_multiplier=noise_multipliers[0], delta=delta,
                                     population=population))
    for sigma in noise_multipliers:
        accountant.compose(GaussianPrivacyEvent(noise_multiplier=sigma,
                                                sample_size=population,
                                                population_size=population))
    return float(accountant.get_epsilon(delta))


def account_round(privacy: Privacy) -> Privacy:
    """``privacy`` after one more round: ``rounds + 1`` and the epsilon they spend."""
    rounds = privacy.rounds + 1
    # Validated, not copied: an epsilon past the target must fail here, loudly.
    return Privacy.model_validate({**privacy.model_dump(), "rounds": rounds,
                                   "epsilon": epsilon_after(privacy, rounds)})


def next_round_allowed(privacy: Privacy) -> bool:
    """Whether one more round stays within ``target_epsilon`` (always, without one)."""
    if privacy.target_epsilon is None:
        return True
    return epsilon_after(privacy, privacy.rounds + 1) <= privacy.target_epsilon * (1 + 1e-9)


def calibrate(target_epsilon: float, rounds: int, delta: float, population: int) -> float:
    """The smallest noise multiplier (to 0.1 %) whose ``rounds`` rounds spend at most
    ``target_epsilon`` at ``delta``: bisection on the accountant's own figure."""
    if not (target_epsilon > 0 and math.isfinite(target_epsilon)) or rounds < 1:
        raise FedseedError(f"privacy: target epsilon {target_epsilon} must be positive and "
                           f"finite, rounds {rounds} at least 1")

    def spent(sigma: float) -> float:
        return epsilon_after(Privacy(noise_multiplier=sigma, delta=delta,
                                     population=population), rounds)

    low, high = 1e-2, 1e4
    if spent(high) > target_epsilon:
        raise FedseedError(f"privacy: no noise multiplier up to {high:g} reaches epsilon "
                           f"{target_epsilon} in {rounds} rounds at delta {delta:g}; "
                           "allow more epsilon or fewer rounds")
    if spent(low) <= target_epsilon:
        return low
    while high / low > 1.001:
        mid = math.sqrt(low * high)
        low, high = (low, mid) if spent(mid) <= target_epsilon else (mid, high)
    return high


__all__ = ["account_round", "calibrate", "epsilon_after", "epsilon_of_releases",
           "next_round_allowed"]
