"""Catch-up: rebuild the shared model of a first-order projection chain.

Round ``r``'s meta-recipe names round ``r - 1``'s (``projection.previous``), so
``w_r`` is ``w0`` (the recipe's own initialisation) plus every round's update, in
order. A device that kept ``w_{r-1}`` applies one round; one that missed rounds
fetches the missing meta-recipes (from the registry) back to a state it holds, or
to round 0. :class:`ChainCache` keeps the latest state per chain in memory, and
:func:`shared_model` says how many rounds it replayed and how many recipe bytes it
fetched to do so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fedseed.assemble import assemble
from fedseed.errors import RecipeError
from fedseed.recipe.codec import canonical_bytes, parse_recipe, recipe_digest
from fedseed.recipe.model import Recipe
from fedseed.trajectory.projection import apply_round, check_generator

if TYPE_CHECKING:
    import torch

#: ``digest -> recipe``: a registry lookup (raises a FedseedError when missing).
Fetch = Callable[[str], Recipe]


@dataclass
class ChainCache:
    """States this process already rebuilt, by meta-recipe digest (newest few)."""

    keep: int = 2
    states: dict[str, dict[str, Any]] = field(default_factory=dict)

    def put(self, digest: str, model: torch.nn.Module) -> None:
        """Remember ``model``'s state as the shared model of ``digest``."""
        self.states[digest] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        while len(self.states) > self.keep:
            self.states.pop(next(iter(self.states)))


@dataclass(frozen=True)
class Replayed:
    """A rebuilt shared model and what rebuilding it cost."""

    model: torch.nn.Module
    rounds: int  # rounds applied
    fetched_bytes: int  # canonical bytes of the meta-recipes fetched
    seconds: float


def chain_back(meta: Recipe, fetch: Fetch | None, have: set[str]) -> tuple[list[Recipe], int]:
    """The meta-recipes from just after a held state (or round 0) up to ``meta``,
    oldest first, and the bytes fetched; every link is checked."""
    chain, fetched = [meta], 0
    current = meta
    while True:
        p = current.projection
        assert p is not None
        if p.round == 0 or p.previous is None:
            break
        if p.previous in have:
            break
        if fetch is None:
            raise RecipeError(f"projection.previous {p.previous}: round {p.round - 1} is not "
                              "held here and no registry was given to fetch it from")
        before = fetch(p.previous)
        if recipe_digest(before) != p.previous:
            raise RecipeError(f"projection.previous {p.previous}: the registry returned "
                              f"{recipe_digest(before)}; refusing the chain")
        if before.projection is None or before.projection.round != p.round - 1:
            raise RecipeError(f"projection.previous {p.previous}: not round {p.round - 1} "
                              "of a projection chain")
        fetched += len(canonical_bytes(before))
        chain.append(before)
        current = before
    chain.reverse()
    return chain, fetched


def shared_model(meta: Recipe, fetch: Fetch | None = None,
                 cache: ChainCache | None = None) -> Replayed:
    """``w`` of ``meta``: from a cached state, else from ``w0``, by exact replay."""
    if meta.projection is None:
        raise RecipeError("shared_model: the recipe has no projection section")
    check_generator(meta.projection)
    started = time.perf_counter()
    digest = recipe_digest(meta)
    have = set(cache.states) if cache is not None else set()
    model = assemble(meta)  # w0
    if digest in have:
        assert cache is not None
        model.load_state_dict(cache.states[digest])
        return Replayed(model, 0, 0, time.perf_counter() - started)
    chain, fetched = chain_back(meta, fetch, have)
    start = chain[0].projection.previous  # type: ignore[union-attr]
    if start is not None and start in have:
        assert cache is not None
        model.load_state_dict(cache.states[start])
    rounds = 0
    for link in chain:
        if link.projection is not None and link.projection.coefficients is not None:
            apply_round(model, link.projection)
            rounds += 1
    if cache is not None:
        cache.put(digest, model)
    return Replayed(model, rounds, fetched, time.perf_counter() - started)


def registry_fetch(registry: Any) -> Fetch:
    """A :data:`Fetch` over a registry client (``fetch(ref) -> Envelope``)."""
    def fetch(digest: str) -> Recipe:
        return parse_recipe(registry.fetch(digest).payload)

    return fetch
