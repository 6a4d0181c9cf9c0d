"""Turning examples into the tensors a recipe's model eats.

Text goes through the recipe's tokenizer: byte-level
(:class:`fedseed.recipe.task.ByteTokenizer`, UTF-8 bytes shifted by three special
ids) or hashed n-grams (:mod:`fedseed.data.ngrams`); either way no vocabulary
travels with a recipe.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from fedseed.data.examples import Examples
from fedseed.data.ngrams import ngram_ids
from fedseed.errors import DataError
from fedseed.recipe.model import Recipe
from fedseed.recipe.task import BOS_ID, BYTE_OFFSET, EOS_ID, PAD_ID, ByteTokenizer

if TYPE_CHECKING:
    import torch

#: Label value ignored by the loss (padding positions in language modelling).
IGNORE_INDEX = -100

Batch = dict[str, "torch.Tensor"]


def encode_text(text: str, tokenizer: ByteTokenizer) -> list[int]:
    """Token ids of ``text``: its UTF-8 bytes, each shifted by the special ids."""
    if tokenizer.lowercase:
        text = text.lower()
    return [b + BYTE_OFFSET for b in text.encode("utf-8")]


def decode_ids(ids: list[int]) -> str:
    """Inverse of :func:`encode_text` (special ids are dropped)."""
    return bytes(i - BYTE_OFFSET for i in ids if i >= BYTE_OFFSET).decode("utf-8", "replace")


def to_tensors(examples: Examples, recipe: Recipe) -> Batch:
    """All of ``examples`` as a dict of tensors, the model inputs plus ``labels``.

    The first dimension indexes examples (sequences, for language modelling), so a
    batch is ``{k: v[index] for k, v in tensors.items()}``.
    """
    import torch

    task = recipe.task
    if task.modality == "text":
        assert recipe.tokenizer is not None and examples.texts is not None
        if task.kind == "language-modeling":
            assert recipe.tokenizer.kind == "bytes"  # only gpt2 models language, on bytes
            return _lm_chunks(examples, recipe.tokenizer)
        if recipe.tokenizer.kind == "hashed-ngrams":
            ids, mask = _pad([ngram_ids(t, recipe.tokenizer) for t in examples.texts])
        else:
            ids, mask = _classification_ids(examples.texts, recipe.tokenizer)
        out = {"input_ids": ids, "attention_mask": mask}
    else:
        assert examples.features is not None
        features = torch.from_numpy(np.ascontiguousarray(examples.features, dtype=np.float32))
        if recipe.architecture_key == "torch:cnn":
            config = recipe.architecture.config
            shape = (config.in_channels, config.image_size, config.image_size)  # type: ignore[union-attr]
            out = {"images": features.reshape(-1, *shape)}
        else:
            out = {"features": features}
    assert examples.labels is not None
    out["labels"] = torch.from_numpy(examples.labels.astype(np.int64))
    return out


def _classification_ids(texts: tuple[str, ...], tokenizer: ByteTokenizer
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    return _pad([[BOS_ID, *encode_text(t, tokenizer)][: tokenizer.max_length] for t in texts])


def _pad(encoded: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id lists with ``PAD_ID`` (0, for either tokenizer) into ids and a mask.

    Pad to the longest sequence present, not to max_length: short texts train faster.
    """
    import torch

    width = max(1, max(len(e) for e in encoded))
    ids = torch.full((len(encoded), width), PAD_ID, dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for row, seq in enumerate(encoded):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return ids, mask


def _lm_chunks(examples: Examples, tokenizer: ByteTokenizer) -> Batch:
    """Concatenate ``BOS text EOS`` documents and cut the stream into windows."""
    import torch

    assert examples.texts is not None
    stream: list[int] = []
    for text in examples.texts:
        stream += [BOS_ID, *encode_text(text, tokenizer), EOS_ID]
    length = tokenizer.max_length
    n = max(1, -(-len(stream) // length))
    ids = torch.full((n, length), PAD_ID, dtype=torch.long)
    labels = torch.full((n, length), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((n, length), dtype=torch.long)
    for row in range(n):
        chunk = stream[row * length:(row + 1) * length]
        ids[row, : len(chunk)] = torch.tensor(chunk, dtype=torch.long)
        labels[row, : len(chunk)] = ids[row, : len(chunk)]
        mask[row, : len(chunk)] = 1
    if len(stream) < 2:
        raise DataError(f"{examples.source}: not enough text to model")
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def num_rows(tensors: Batch) -> int:
    """Number of examples (sequences) in a tensor dict."""
    return int(next(iter(tensors.values())).shape[0])
