"""Users with different tasks in one federation (pure functions).

A meta-recipe is knowledge of how to train (optimizer, schedule, budget, the
portfolio), not of what the labels mean, so one shared training section can serve
devices that solve different classification tasks on the same architecture: digit
identity (10 labels), parity (2), "at least 5" (2). A device runs the meta-recipe
with its own ``task.num_labels``; the server accepts that change only for label
counts its operator listed (``task-labels``), and nothing else may differ.

Losses of different tasks are not comparable as they are: a 2-way task's
cross-entropy starts at log 2, a 10-way task's at log 10. Before aggregating, each
reply's validation losses are expressed on the meta-recipe's task scale, in units of
the loss of a uniform guess (``log K``): a reply of a ``K``-way task has its losses
multiplied by ``log K_meta / log K``. The factor depends only on the task, never on
what other devices reported, so a device cannot move it, and a single-task
federation is untouched (the factor is 1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from fedseed.errors import FedseedError
from fedseed.meta.base import ClientReply
from fedseed.recipe.model import Recipe
from fedseed.recipe.task import Task


def parse_task_labels(text: str) -> tuple[int, ...]:
    """``"10,2"`` → ``(2, 10)``: the label counts devices may train instead of the
    recipe's own (empty: one task per federation)."""
    if not text.strip():
        return ()
    out = set()
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or not 2 <= int(part) <= 100_000:
            raise FedseedError(f"task-labels: '{part}' is not a label count in 2..100000 "
                               f"(write them comma-separated, e.g. \"10,2\")")
        out.add(int(part))
    return tuple(sorted(out))


def task_allowed(task: Task, meta_task: Task, allowed: Sequence[int]) -> bool:
    """Whether a reply may have run ``task`` where the meta-recipe says ``meta_task``:
    the same task, or a classification task of the same modality and metric whose
    label count the operator allowed."""
    if task == meta_task:
        return True
    return (task.kind == meta_task.kind == "classification"
            and task.modality == meta_task.modality and task.metric == meta_task.metric
            and task.num_labels in allowed)


def chance_loss(task: Task) -> float:
    """The cross-entropy of a uniform guess: ``log K`` for a ``K``-way classification
    (1 for language modelling, whose tasks are not mixed)."""
    if task.kind == "classification" and task.num_labels:
        return math.log(task.num_labels)
    return 1.0


def on_meta_scale(reply: ClientReply, meta: Recipe) -> ClientReply:
    """``reply`` with its validation losses rescaled to ``meta``'s task (see the
    module docstring); the same reply when the tasks agree."""
    if reply.recipe.task == meta.task or reply.recipe.evidence is None:
        return reply
    factor = chance_loss(meta.task) / chance_loss(reply.recipe.task)
    ev = reply.recipe.evidence
    final = ev.final.model_copy(update={"val_loss": ev.final.val_loss * factor})
    curve = [p.model_copy(update={"val_loss": p.val_loss * factor}) for p in ev.curve]
    evidence = ev.model_copy(update={"final": final, "curve": curve})
    recipe = reply.recipe.model_copy(update={"evidence": evidence})
    return ClientReply(recipe=recipe, digest=reply.digest, node_id=reply.node_id,
                       assignment=reply.assignment)


__all__ = ["chance_loss", "on_meta_scale", "parse_task_labels", "task_allowed"]
