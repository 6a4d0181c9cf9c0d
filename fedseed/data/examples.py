"""In-memory examples and their deterministic train/validation/test split."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fedseed.errors import DataError
from fedseed.recipe.training import Split


@dataclass(frozen=True)
class Examples:
    """A device's examples: numeric ``features`` or ``texts``, and ``labels``.

    ``labels`` is ``None`` for language modelling. Rows are aligned across fields.
    """

    source: str
    features: np.ndarray | None = None
    texts: tuple[str, ...] | None = None
    labels: np.ndarray | None = None

    def __len__(self) -> int:
        if self.features is not None:
            return int(self.features.shape[0])
        if self.texts is not None:
            return len(self.texts)
        return 0 if self.labels is None else int(self.labels.shape[0])

    def take(self, index: Sequence[int] | np.ndarray) -> Examples:
        """The rows at ``index``, in that order."""
        return Examples(
            source=self.source,
            features=None if self.features is None else self.features[index],
            texts=None if self.texts is None else tuple(self.texts[i] for i in index),
            labels=None if self.labels is None else self.labels[index],
        )


@dataclass(frozen=True)
class Splits:
    """Train, validation and test examples of one device."""

    train: Examples
    validation: Examples
    test: Examples


def split_examples(examples: Examples, split: Split) -> Splits:
    """Split rows by a permutation seeded with ``split.seed``: same data, same split.

    Validation gets at least one row; test gets at least one row unless
    ``split.test_fraction`` is 0; train keeps the rest and must not be empty.
    """
    n = len(examples)
    if n == 0:
        raise DataError(f"{examples.source}: no rows to train on")
    n_val = max(1, round(n * split.validation_fraction))
    n_test = max(1, round(n * split.test_fraction)) if split.test_fraction > 0 else 0
    if n - n_val - n_test < 1:
        raise DataError(
            f"{examples.source}: {n} rows are too few to split into train, validation "
            f"and test (fractions {split.validation_fraction}, {split.test_fraction})"
        )
    order = np.random.default_rng(split.seed).permutation(n)
    return Splits(
        validation=examples.take(order[:n_val]),
        test=examples.take(order[n_val:n_val + n_test]),
        train=examples.take(order[n_val + n_test:]),
    )
