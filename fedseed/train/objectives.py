"""Forward pass, loss and metric for each kind of task."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from fedseed.data.tensors import IGNORE_INDEX, Batch
from fedseed.recipe.model import Recipe


def logits_of(model: torch.nn.Module, batch: Batch, recipe: Recipe) -> torch.Tensor:
    """The model's logits for ``batch`` (inputs named as :func:`to_tensors` names them)."""
    if recipe.architecture_key == "torch:ngram-bag" or (
            recipe.architecture.family == "custom" and "input_ids" in batch):
        return model(batch["input_ids"])
    if recipe.architecture.family == "custom":
        return model(batch["features"])
    if recipe.architecture.family == "torch":
        key = "images" if recipe.architecture.name == "cnn" else "features"
        return model(batch[key])
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


def loss_sum(logits: torch.Tensor, batch: Batch, recipe: Recipe) -> tuple[torch.Tensor, int]:
    """Summed loss over the batch and the number of terms in it."""
    labels = batch["labels"]
    if recipe.task.kind == "language-modeling":
        # Next-token prediction: position t predicts token t+1.
        flat_labels = labels[:, 1:].reshape(-1)
        flat_logits = logits[:, :-1].reshape(-1, logits.shape[-1])
        count = int((flat_labels != IGNORE_INDEX).sum())
        return F.cross_entropy(flat_logits, flat_labels, ignore_index=IGNORE_INDEX,
                               reduction="sum"), count
    return F.cross_entropy(logits, labels, reduction="sum"), int(labels.shape[0])


def trim_padding(batch: Batch) -> Batch:
    """Drop padding columns that no row of a text batch uses (faster steps)."""
    mask = batch.get("attention_mask")
    if mask is None or batch["labels"].dim() == 2:
        return batch
    width = max(1, int(mask.sum(dim=1).max()))
    return {k: (v[:, :width] if v.dim() == 2 else v) for k, v in batch.items()}


#: Tokens per evaluation batch for sequence models: large enough to be fast, small
#: enough that evaluation never dominates peak memory on a small device.
EVAL_TOKENS = 4096


@torch.no_grad()
def evaluate(model: torch.nn.Module, tensors: Batch, recipe: Recipe,
             batch_size: int | None = None) -> tuple[float, float]:
    """Mean loss and the task metric of ``model`` on ``tensors`` (eval mode)."""
    if batch_size is None:
        ids = tensors.get("input_ids")
        batch_size = 256 if ids is None else max(1, EVAL_TOKENS // int(ids.shape[1]))
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    predictions: list[torch.Tensor] = []
    n = int(tensors["labels"].shape[0])
    for start in range(0, n, batch_size):
        batch = trim_padding({k: v[start:start + batch_size] for k, v in tensors.items()})
        logits = logits_of(model, batch, recipe)
        loss, terms = loss_sum(logits, batch, recipe)
        total += float(loss)
        count += terms
        if recipe.task.kind == "classification":
            predictions.append(logits.argmax(dim=-1))
    model.train(was_training)
    mean_loss = total / max(1, count)
    metric = recipe.task.metric
    if metric == "perplexity":
        return mean_loss, math.exp(min(mean_loss, 50.0))
    predicted = torch.cat(predictions)
    labels = tensors["labels"]
    if metric == "accuracy":
        return mean_loss, float((predicted == labels).float().mean())
    return mean_loss, _macro_f1(predicted, labels, recipe.task.num_labels or 2)


def _macro_f1(predicted: torch.Tensor, labels: torch.Tensor, num_labels: int) -> float:
    scores = []
    for c in range(num_labels):
        tp = int(((predicted == c) & (labels == c)).sum())
        fp = int(((predicted == c) & (labels != c)).sum())
        fn = int(((predicted != c) & (labels == c)).sum())
        if tp + fp + fn:
            scores.append(2 * tp / (2 * tp + fp + fn))
    return sum(scores) / max(1, len(scores))
