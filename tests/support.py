"""Paths shared by tests. A plain module (not a conftest): several conftest.py files
exist, and `from conftest import ...` would pick whichever was imported first."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSETS = Path(__file__).resolve().parent / "assets"


def synthetic_reply(assignment: dict, val_loss: float, *, node: int = 0, n_train: int = 80,
                    steps: int = 200, accuracy: float | None = None, curve: list | None = None):
    """A digits-mlp client reply whose evidence says ``val_loss`` for ``assignment``
    (self-consistent unless ``curve`` says otherwise): for aggregator tests that need
    controlled results, not trained ones."""
    from fedseed.meta import ClientReply
    from fedseed.recipe import load_builtin
    from fedseed.recipe.codec import recipe_digest
    from fedseed.recipe.evidence import CurvePoint, Evidence, ExampleCounts, FinalMetrics, Lineage
    from fedseed.recipe.search import apply_assignment

    ran = apply_assignment(load_builtin("digits-mlp"), {**assignment, "budget.max_steps": steps}
                           if "budget.max_steps" not in assignment else assignment)
    acc = accuracy if accuracy is not None else round(min(15, max(0, 15 - val_loss * 10))) / 15
    points = curve
    if points is None:
        points = [CurvePoint(step=s, val_loss=val_loss + 1.0 / (1 + s / 20), val_metric=acc)
                  for s in range(20, steps + 1, 20)]
        points[-1] = CurvePoint(step=points[-1].step, val_loss=val_loss, val_metric=acc)
    evidence = Evidence(curve=points, final=FinalMetrics(val_loss=val_loss, val_metric=acc),
                        num_examples=ExampleCounts(train=n_train, validation=15, test=15),
                        steps=points[-1].step, best_step=points[-1].step, stopped_early=False,
                        wall_seconds=0.1)
    recipe = ran.model_copy(update={"search_space": None, "evidence": evidence, "lineage":
                                    Lineage(parents=[], round=1, method="client")})
    return ClientReply(recipe=recipe, digest=recipe_digest(recipe), node_id=node,
                       assignment=dict(assignment))
