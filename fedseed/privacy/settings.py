"""What an operator asks for (:class:`PrivacySettings`: a target epsilon, or a noise
multiplier) and the signed ``privacy`` section it becomes once the federation knows
how many devices it has (:func:`privacy_section`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from fedseed.errors import FedseedError
from fedseed.recipe.privacy import Privacy

if TYPE_CHECKING:
    from fedseed.recipe.model import Recipe


@dataclass(frozen=True)
class PrivacySettings:
    """``dp-*`` run-config keys. ``noise_multiplier`` 0: the smallest one whose
    ``num_rounds`` rounds stay within ``target_epsilon``; ``delta`` 0: ``1 / N^1.1`` for
    N devices (below 1/N, as delta must be: at 1/N, publishing one device's data in the
    clear would qualify); ``loss_bound`` 0: the loss of a uniform guess (:func:`loss_scale`)."""

    mode: Literal["central", "local"] = "central"
    target_epsilon: float | None = None
    noise_multiplier: float = 0.0
    delta: float = 0.0
    clip: float = 1.0
    loss_bound: float = 0.0
    curve_points: int = 2

    def __post_init__(self) -> None:
        checks = [
            (self.mode in ("central", "local"), f"dp must be central or local, not "
                                                f"'{self.mode}'"),
            (self.target_epsilon is None or self.target_epsilon > 0,
             f"dp-epsilon {self.target_epsilon} must be positive"),
            (0 <= self.noise_multiplier <= 1e4,
             f"dp-noise-multiplier {self.noise_multiplier} must be 0 (from dp-epsilon) or "
             "in (0, 10000]"),
            (self.target_epsilon is not None or self.noise_multiplier > 0,
             "dp needs dp-epsilon (a target) or dp-noise-multiplier"),
            (0 <= self.delta < 1, f"dp-delta {self.delta} must be in [0, 1) (0: 1/N)"),
            (self.clip > 0 and self.loss_bound >= 0,
             f"dp-clip {self.clip} must be positive and dp-loss-bound {self.loss_bound} "
             "0 (chance loss) or positive"),
            (1 <= self.curve_points <= 16, f"dp-curve-points {self.curve_points} must be "
                                           "1..16"),
        ]
        for ok, message in checks:
            if not ok:
                raise FedseedError(f"privacy settings: {message}")


def loss_scale(recipe: Recipe) -> float:
    """The loss of a uniform guess: ``log K`` for a ``K``-way classification, ``log V``
    over a language model's ``V`` token ids. Honest runs report less; the bound keeps
    a released loss from saying more than that."""
    if recipe.task.kind == "classification" and recipe.task.num_labels:
        return math.log(recipe.task.num_labels)
    vocab = recipe.tokenizer.vocab_size if recipe.tokenizer is not None else 256
    return math.log(vocab)


def default_delta(population: int) -> float:
    """``1 / N^1.1``: below one over the number of devices, as delta must be."""
    return float(max(2, population)) ** -1.1


def privacy_section(settings: PrivacySettings, population: int, rounds: int,
                    recipe: Recipe | None = None) -> Privacy:
    """The signed section for a federation of ``population`` devices and ``rounds``
    rounds of ``recipe``: the noise multiplier calibrated by the accountant when not
    given."""
    from fedseed.privacy.accountant import calibrate, epsilon_after

    delta = settings.delta or default_delta(population)
    if delta > 1.0 / population:
        raise FedseedError(f"privacy settings: dp-delta {delta:g} exceeds 1/N for {population} "
                           "devices; use a smaller delta (0: 1/N^1.1)")
    sigma = settings.noise_multiplier or calibrate(settings.target_epsilon,  # type: ignore[arg-type]
                                                   rounds, delta, population)
    section = Privacy(mode=settings.mode, noise_multiplier=sigma, clip=settings.clip,
                      loss_bound=settings.loss_bound or (loss_scale(recipe) if recipe
                                                         else 1.0),
                      curve_points=settings.curve_points,
                      delta=delta, target_epsilon=settings.target_epsilon,
                      population=population)
    if settings.target_epsilon is not None and epsilon_after(section, 1) > \
            settings.target_epsilon:
        raise FedseedError(f"privacy settings: one round at noise multiplier {sigma:.4g} "
                           f"already spends more than epsilon {settings.target_epsilon}; "
                           "raise dp-noise-multiplier or dp-epsilon")
    return section


__all__ = ["PrivacySettings", "default_delta", "loss_scale", "privacy_section"]
