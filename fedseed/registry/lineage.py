"""Lineage: walking and verifying a recipe's ancestors in a registry.

Every recipe names its parents by digest (``lineage.parents``). Because digests are
content addresses, an ancestor fetched from any registry can be checked against the
digest its child recorded; a missing ancestor is reported, never skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fedseed.errors import FedseedError, RecipeNotFound
from fedseed.provenance.trust import TrustStore
from fedseed.provenance.verify import verify_envelope
from fedseed.recipe.model import Recipe
from fedseed.registry.client import RegistryClient

MAX_ANCESTORS = 10_000


@dataclass
class LineageNode:
    """One recipe in a derivation tree, with its verification status."""

    digest: str
    recipe: Recipe | None = None
    keyids: tuple[str, ...] = ()
    problem: str | None = None
    parents: list[LineageNode] = field(default_factory=list)
    seen_before: bool = False


def lineage_tree(client: RegistryClient, ref: str, trust: TrustStore,
                 role: str | None = None) -> LineageNode:
    """The derivation tree of ``ref``: each node verified, missing ones marked."""
    visited: dict[str, LineageNode] = {}

    def visit(digest_or_ref: str) -> LineageNode:
        if digest_or_ref in visited:
            return LineageNode(digest=digest_or_ref, recipe=visited[digest_or_ref].recipe,
                               seen_before=True)
        if len(visited) >= MAX_ANCESTORS:
            return LineageNode(digest=digest_or_ref, problem="too many ancestors; not followed")
        try:
            envelope = client.fetch(digest_or_ref)
        except RecipeNotFound:
            node = LineageNode(digest=digest_or_ref, problem="missing from the registry")
            visited[digest_or_ref] = node
            return node
        try:
            verified = verify_envelope(envelope, trust, role=role, source=digest_or_ref[:19])
        except FedseedError as e:
            node = LineageNode(digest=digest_or_ref, problem=e.diagnostics())
            visited[digest_or_ref] = node
            return node
        if digest_or_ref.startswith("sha256:") and verified.digest != digest_or_ref:
            node = LineageNode(digest=digest_or_ref,
                               problem=f"registry served different content {verified.digest}")
            visited[digest_or_ref] = node
            return node
        node = LineageNode(digest=verified.digest, recipe=verified.recipe,
                           keyids=verified.keyids)
        visited[digest_or_ref] = visited[verified.digest] = node
        lineage = verified.recipe.lineage
        node.parents = [visit(p) for p in (lineage.parents if lineage else [])]
        return node

    return visit(ref)


def problems(node: LineageNode) -> list[str]:
    """Every problem in the tree, as ``digest: problem`` lines (empty when all verify)."""
    found: list[str] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if current.problem is not None:
            found.append(f"{current.digest}: {current.problem}")
        stack.extend(current.parents)
    return found
