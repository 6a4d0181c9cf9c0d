"""Paths shared by tests. A plain module (not a conftest): several conftest.py files
exist, and `from conftest import ...` would pick whichever was imported first."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from warm_cli import warm_parent

ROOT = Path(__file__).resolve().parent.parent
ASSETS = Path(__file__).resolve().parent / "assets"

#: Seconds after which a process a test started counts as hung. A guard, not a speed
#: limit: far above what the slowest machine needs, so that no outcome depends on how
#: fast the machine is (docs/development.md). Waits for a condition poll and return as
#: soon as it holds.
HANG_GUARD = 1200.0


@dataclass(frozen=True)
class Run:
    """A finished command: exit code, standard output, standard error."""

    code: int
    out: str
    err: str


def run_fedseed(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
                timeout: float = HANG_GUARD, cold: bool = False) -> Run:
    """Run the ``fedseed`` CLI as a user does, in a process of its own; ``env`` adds
    variables. The process is forked from a parent that has torch and friends imported
    (tests/warm_cli.py); ``cold`` starts a fresh ``python -m fedseed`` instead, for
    tests of what a cold start does."""
    environment = {**os.environ, **(env or {})}
    if not cold:
        code, out, err = warm_parent().run(list(args), cwd, environment, timeout)
        return Run(code, out, err)
    done = subprocess.run([sys.executable, "-m", "fedseed", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, env=environment)
    return Run(done.returncode, done.stdout, done.stderr)


def synthetic_reply(assignment: dict, val_loss: float, *, node: int = 0, n_train: int = 80,
                    steps: int = 200, accuracy: float | None = None, curve: list | None = None):
    """A digits-mlp client reply whose evidence says ``val_loss`` for ``assignment``
    (self-consistent unless ``curve`` says otherwise): for aggregator tests that need
    controlled results, not trained ones."""
    from fedseed.meta import ClientReply
    from fedseed.recipe import load_builtin
    from fedseed.recipe.codec import recipe_digest
    from fedseed.recipe.evidence import CurvePoint, Evidence, ExampleCounts, FinalMetrics, Lineage
    from fedseed.recipe.overrides import apply_assignment

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
