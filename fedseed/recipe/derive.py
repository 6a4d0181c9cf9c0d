"""Deriving one recipe from another: the child a device reports after a run."""

from __future__ import annotations

from datetime import datetime, timezone

from fedseed.recipe.codec import recipe_digest
from fedseed.recipe.evidence import Evidence, Lineage
from fedseed.recipe.model import Recipe


def child_recipe(
    parent: Recipe,
    ran: Recipe,
    evidence: Evidence,
    *,
    method: str = "personalize",
    producer: str | None = None,
    created: datetime | None = None,
) -> Recipe:
    """Return the client recipe for a run of ``ran`` that was derived from ``parent``.

    ``ran`` is the configuration actually executed (``parent`` with any assignment
    applied); the child keeps it, drops the search space and the portfolio (a run
    explores one point; the parent's digest says where the point came from), attaches
    ``evidence``, and records ``parent``'s digest as its only parent.
    """
    round_ = parent.lineage.round if parent.lineage is not None else 0
    lineage = Lineage(
        parents=[recipe_digest(parent)],
        round=round_,
        method=method,
        producer=producer,
        created=created or datetime.now(timezone.utc).replace(microsecond=0),
    )
    return ran.model_copy(update={"search_space": None, "portfolio": None,
                                  "evidence": evidence,
                                  "lineage": lineage})
