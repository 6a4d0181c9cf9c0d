"""Debian's fortunes as a labelled text-classification set, and users that mix its
categories (a Dirichlet draw per user), for federated text benchmarks.

Each quote is labelled with its category file (the ``categories`` largest ones,
largest first, then by name: label 0 is the largest). :func:`category_users` gives
every user its own mix of categories, ``p_u ~ Dir(alpha * 1)`` (Hsu et al., 2019,
https://arxiv.org/abs/1909.06335, draw the mix per class; here it is drawn per user,
which fixes each user's size as well), and deals rows without replacement, so no
quote belongs to two users.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedseed.data.examples import Examples
from fedseed.data.fortunes import FORTUNES_DIR, load_fortunes
from fedseed.errors import DataError
from fedseed.recipe.training import Split


@dataclass(frozen=True)
class LabelledFortunes:
    """Every quote of the chosen categories, labelled by category (label = index)."""

    categories: tuple[str, ...]
    examples: Examples


def labelled_fortunes(categories: int = 10, directory: Path = FORTUNES_DIR, *,
                      per_category: int | None = None, seed: int = 0) -> LabelledFortunes:
    """The ``categories`` largest fortunes categories as one shuffled, labelled set;
    ``per_category`` keeps that many seeded quotes of each (all when ``None``)."""
    users = load_fortunes(directory)
    if len(users) < categories:
        raise DataError(f"{directory}: {len(users)} fortunes categories, {categories} asked")
    names = sorted(users, key=lambda n: (-len(users[n]), n))[:categories]
    rng = np.random.default_rng(seed)
    texts: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(names):
        quotes = users[name].texts
        assert quotes is not None
        for i in rng.permutation(len(quotes))[:per_category]:
            texts.append(quotes[i])
            labels.append(label)
    order = rng.permutation(len(texts))
    examples = Examples(source=f"fortunes-{categories}", texts=tuple(texts[i] for i in order),
                        labels=np.asarray([labels[i] for i in order], dtype=np.int64))
    return LabelledFortunes(categories=tuple(names), examples=examples)


def rows_for_train(max_train: int, split: Split) -> int:
    """The most rows a user may hold so that ``split`` leaves at most ``max_train``
    of them for training (validation and test take the rest)."""
    if max_train < 1:
        raise DataError(f"max train rows {max_train} must be at least 1")
    n = max_train
    while _train_rows(n + 1, split) <= max_train:
        n += 1
    return n


def _train_rows(n: int, split: Split) -> int:
    n_val = max(1, round(n * split.validation_fraction))
    n_test = max(1, round(n * split.test_fraction)) if split.test_fraction > 0 else 0
    return n - n_val - n_test


def dirichlet_mix(labels: np.ndarray, num_users: int, alpha: float, min_rows: int,
                  max_rows: int, seed: int = 0) -> list[np.ndarray]:
    """Row indices per user: user ``u`` draws a size uniform in ``[min_rows, max_rows]``
    and a mix ``p_u ~ Dir(alpha)`` over the classes, then takes that many rows of
    each class (multinomial counts) from what earlier users left. A class that runs
    out passes its share to the user's other classes, in proportion to ``p_u``.
    Deterministic in ``seed``; rows are never dealt twice."""
    if num_users < 1 or not 0 < min_rows <= max_rows or alpha <= 0:
        raise DataError(f"dirichlet mix: users {num_users}, rows {min_rows}..{max_rows} "
                        f"and alpha {alpha} must be positive (min <= max)")
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    left = [list(rng.permutation(np.flatnonzero(labels == c))) for c in classes]
    users: list[np.ndarray] = []
    for _ in range(num_users):
        size = int(rng.integers(min_rows, max_rows + 1))
        p = rng.dirichlet([alpha] * len(classes))
        counts = rng.multinomial(size, p)
        available = np.asarray([len(rows) for rows in left])
        counts = np.minimum(counts, available)
        while counts.sum() < size and (room := available - counts).sum() > 0:
            weights = np.where(room > 0, p + 1e-12, 0.0)
            extra = rng.multinomial(size - int(counts.sum()), weights / weights.sum())
            counts = np.minimum(counts + extra, available)
        if counts.sum() < min_rows:
            raise DataError(f"dirichlet mix: {len(labels)} rows run out before user "
                            f"{len(users) + 1} of {num_users}; use fewer or smaller users")
        chosen = []
        for c, k in enumerate(counts):
            chosen.extend(left[c][:k])
            del left[c][:k]
        users.append(np.asarray(sorted(chosen), dtype=np.int64))
    return users


def category_users(examples: Examples, num_users: int, *, alpha: float = 0.5,
                   min_rows: int = 60, max_rows: int = 428, seed: int = 0) -> list[Examples]:
    """``examples`` dealt to ``num_users`` users by :func:`dirichlet_mix`."""
    if examples.labels is None:
        raise DataError(f"{examples.source}: category users need labels")
    parts = dirichlet_mix(examples.labels, num_users, alpha, min_rows, max_rows, seed)
    out = []
    for u, rows in enumerate(parts):
        sub = examples.take(rows)
        out.append(Examples(source=f"{examples.source}[user {u}]", texts=sub.texts,
                            labels=sub.labels))
    return out


__all__ = ["LabelledFortunes", "category_users", "dirichlet_mix", "labelled_fortunes",
           "rows_for_train"]
