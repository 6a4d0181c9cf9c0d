"""The aggregator interface: client recipes in, next meta-recipe out, as pure functions.

An aggregator is ``(meta, replies, state) -> (next_meta, next_state)``. It never
mutates its inputs, never touches the network or the disk, and carries whatever
spans rounds in an explicit, immutable ``state`` value (optax style), so a server can
checkpoint, resume and replay aggregation exactly. What the next round should try is
written into the meta-recipe itself (its ``portfolio``), so devices and verifiers
see it in the signed bytes.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from fedseed.recipe.model import Recipe
from fedseed.recipe.search import Scalar, SearchPath, SearchSpace


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


@dataclass(frozen=True)
class Options:
    """Switches every aggregator honours (run config keys in brackets).

    ``robust`` [robust]: screen self-contradicting replies, cap client weights,
    use weighted medians. ``budget_from_curves`` [budget-from-curves]: set the
    recommended ``max_steps`` from a saturating fit of the evidence. ``warm_start``
    [warm-start]: pool clients' Adam second moments into the meta-recipe.
    ``seed``: for the aggregator's own draws (new candidates).
    """

    robust: bool = True
    budget_from_curves: bool = True
    warm_start: bool = False
    seed: int = 0


class Aggregator(Protocol):
    """Client recipes + previous meta-recipe + state -> next meta-recipe + state."""

    name: str

    def prepare(self, meta: Recipe) -> Recipe:
        """The round-0 meta-recipe: ``meta`` with whatever the first round should try."""
        ...

    def __call__(self, meta: Recipe, replies: Sequence[ClientReply],
                 state: AggregatorState) -> tuple[Recipe, AggregatorState]:
        """Aggregate one round."""
        ...


def sample_assignment(space: SearchSpace, rng: random.Random) -> dict[str, Scalar]:
    """One configuration drawn from ``space`` (one value per path)."""
    return {path: dist.sample(rng.random()) for path, dist in space.params.items()}


def assignment_key(assignment: Mapping[str, Scalar] | Mapping[SearchPath, Scalar]) -> str:
    """Canonical text of an assignment: equal assignments, equal keys."""
    return json.dumps(dict(assignment), sort_keys=True, separators=(",", ":"))


def draw_candidates(space: SearchSpace, count: int, rng: random.Random,
                    skip: tuple[str, ...] = ()) -> list[dict[SearchPath, Scalar]]:
    """Up to ``count`` distinct configurations, Latin-hypercube stratified per path
    (each path's range is cut into ``count`` strata and each stratum used once), so
    a small population still spans every range. Paths in ``skip`` are left out."""
    paths = [p for p in space.params if p not in skip]
    strata = {p: rng.sample(range(count), count) for p in paths}
    seen: dict[str, dict[SearchPath, Scalar]] = {}
    for i in range(count):
        assignment = {p: space.params[p].sample((strata[p][i] + rng.random()) / count)
                      for p in paths}
        assignment = {p: _round(v) for p, v in assignment.items()}
        seen.setdefault(assignment_key(assignment), assignment)
    return list(seen.values())


def _round(value: Scalar) -> Scalar:
    """Four significant digits: configurations are read by people and compared by text."""
    if isinstance(value, float):
        return float(f"{value:.4g}")
    return value
