"""The aggregator interface: client recipes in, next meta-recipe out, as pure functions.

An aggregator is ``(meta, replies, state) -> (next_meta, next_state)``. It never
mutates its inputs, never touches the network or the disk, and carries whatever
spans rounds in an explicit, immutable ``state`` value (optax style), so a server can
checkpoint, resume and replay aggregation exactly.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from fedseed.recipe.model import Recipe
from fedseed.recipe.search import Scalar, SearchSpace


@dataclass(frozen=True)
class ClientReply:
    """One accepted client recipe, with what the server knows about its sender."""

    recipe: Recipe
    digest: str
    node_id: int
    assignment: Mapping[str, Scalar]

    @property
    def weight(self) -> int:
        """Sample weight: the number of training examples the client used."""
        assert self.recipe.evidence is not None
        return self.recipe.evidence.num_examples.train


@dataclass(frozen=True)
class AggregatorState:
    """State an aggregator carries between rounds (immutable; replaced, not edited)."""

    round: int = 0
    values: Mapping[str, Any] = field(default_factory=dict)


class Aggregator(Protocol):
    """Client recipes + previous meta-recipe + state -> next meta-recipe + state."""

    name: str

    def __call__(self, meta: Recipe, replies: Sequence[ClientReply],
                 state: AggregatorState) -> tuple[Recipe, AggregatorState]:
        """Aggregate one round."""
        ...


def sample_assignment(space: SearchSpace, rng: random.Random) -> dict[str, Scalar]:
    """One configuration drawn from ``space`` (one value per path)."""
    return {path: dist.sample(rng.random()) for path, dist in space.params.items()}
