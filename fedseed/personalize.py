"""Local personalization: a recipe plus a device's private data become personalised
weights (kept on the device) and a client recipe (what may travel).

The client recipe is a child of the input recipe: the configuration that ran,
``lineage.parents = [digest of the input]``, and evidence of what happened. It holds
no weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fedseed._internal.atomic import atomic_directory, atomic_write_bytes
from fedseed.assemble import assemble, save_weights
from fedseed.data.examples import Examples, split_examples
from fedseed.data.local import check_examples, load_examples
from fedseed.recipe.codec import canonical_bytes, recipe_digest
from fedseed.recipe.derive import child_recipe
from fedseed.recipe.model import Recipe
from fedseed.recipe.overrides import apply_assignment, apply_overrides
from fedseed.recipe.search import Scalar

if TYPE_CHECKING:  # torch loads with training, after the inputs were checked
    from fedseed.train.loop import ProgressFn, TrainResult

WEIGHTS_FILE = "model.safetensors"
RECIPE_FILE = "recipe.json"


@dataclass(frozen=True)
class Personalized:
    """Outcome of one personalization: the client recipe and the trained model."""

    recipe: Recipe
    digest: str
    result: TrainResult


def personalize_examples(
    recipe: Recipe,
    examples: Examples,
    *,
    assignment: Mapping[str, Scalar] | None = None,
    progress: ProgressFn | None = None,
    method: str = "personalize",
    initial_state: Mapping[str, Any] | None = None,
    task: Mapping[str, Scalar] | None = None,
) -> Personalized:
    """Train ``recipe`` (with ``assignment`` applied) on in-memory ``examples``.

    ``task`` sets task fields (``task.num_labels``, ``task.metric``) for a device
    whose task differs from the recipe's (fedseed.meta.tasks); the child still names
    ``recipe`` as its parent.

    ``initial_state`` (a state dict) fine-tunes from those weights instead of the
    recipe's random initialisation: the FedAvg + fine-tuning baseline, or a model
    rebuilt some other way.
    """
    from fedseed.train.loop import train

    ran = apply_assignment(recipe, assignment) if assignment else recipe
    if task:
        ran = apply_overrides(ran, task)
    check_examples(examples, ran)
    splits = split_examples(examples, ran.split)
    model = assemble(ran)
    if initial_state is not None:
        model.load_state_dict(dict(initial_state))
    result = train(ran, model, splits, progress=progress)
    child = child_recipe(recipe, ran, result.evidence, method=method)
    return Personalized(recipe=child, digest=recipe_digest(child), result=result)


def personalize(
    recipe: Recipe,
    data: str,
    out: Path,
    *,
    text_column: str = "text",
    label_column: str = "label",
    assignment: Mapping[str, Scalar] | None = None,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
) -> Personalized:
    """Personalise ``recipe`` on the local data at ``data`` and write ``out``.

    ``out`` receives ``model.safetensors`` (the personalised weights) and
    ``recipe.json`` (the client recipe, canonical bytes). It appears complete or not
    at all: everything is written to a temporary folder that is renamed at the end,
    and every input is checked before training starts.
    """
    ran = apply_assignment(recipe, assignment) if assignment else recipe
    examples = load_examples(data, ran, text_column=text_column, label_column=label_column)
    split_examples(examples, ran.split)  # fail on too-small data before touching `out`
    with atomic_directory(out, overwrite=overwrite) as tmp:
        done = personalize_examples(recipe, examples, assignment=assignment, progress=progress)
        save_weights(done.result.model, tmp / WEIGHTS_FILE, done.recipe)
        atomic_write_bytes(tmp / RECIPE_FILE, canonical_bytes(done.recipe))
    return done
