"""Fortunes as a labelled set and users that mix its categories (Dirichlet per user):
sizes within bounds, training rows capped, no quote dealt twice, same seed same users."""

from __future__ import annotations

import numpy as np
import pytest

from fedseed.data.examples import split_examples
from fedseed.data.fortune_categories import (
    category_users,
    dirichlet_mix,
    labelled_fortunes,
    rows_for_train,
)
from fedseed.errors import DataError
from fedseed.recipe.training import Split

SPLIT = Split(validation_fraction=0.15, test_fraction=0.15, seed=0)


def _labels(per_class=400, classes=10):
    return np.repeat(np.arange(classes), per_class)


def test_users_hold_their_size_and_never_share_a_row():
    users = dirichlet_mix(_labels(), 20, alpha=0.5, min_rows=60, max_rows=200, seed=3)
    assert len(users) == 20
    assert all(60 <= len(u) <= 200 for u in users)
    every = np.concatenate(users)
    assert len(every) == len(set(every.tolist()))


def test_small_alpha_concentrates_each_user_on_few_categories():
    labels = _labels()
    skewed = dirichlet_mix(labels, 20, alpha=0.1, min_rows=100, max_rows=100, seed=0)
    mixed = dirichlet_mix(labels, 20, alpha=100.0, min_rows=100, max_rows=100, seed=0)

    def top_share(users):
        return np.mean([np.bincount(labels[u], minlength=10).max() / len(u) for u in users])

    assert top_share(skewed) > 0.6 > 0.25 > top_share(mixed)


def test_same_seed_same_users_other_seed_other_users():
    labels = _labels()
    a = dirichlet_mix(labels, 8, 0.5, 30, 120, seed=1)
    b = dirichlet_mix(labels, 8, 0.5, 30, 120, seed=1)
    c = dirichlet_mix(labels, 8, 0.5, 30, 120, seed=2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_an_exhausted_category_passes_its_share_on():
    labels = np.asarray([0] * 50 + [1] * 1000)
    users = dirichlet_mix(labels, 5, alpha=0.5, min_rows=100, max_rows=100, seed=0)
    assert all(len(u) == 100 for u in users)
    assert (labels[np.concatenate(users)] == 0).sum() <= 50


def test_running_out_of_rows_is_a_data_error():
    with pytest.raises(DataError, match="run out"):
        dirichlet_mix(_labels(per_class=10), 10, 0.5, min_rows=50, max_rows=50, seed=0)


def test_rows_for_train_caps_the_training_split_at_300():
    n = rows_for_train(300, SPLIT)
    assert len(_split_train(n)) <= 300 < len(_split_train(n + 1))


def _split_train(n):
    from fedseed.data.examples import Examples

    return split_examples(Examples(source="x", labels=np.zeros(n, dtype=np.int64)), SPLIT).train


def test_labelled_fortunes_and_capped_users_from_a_folder(tmp_path):
    for c, name in enumerate(["art", "food", "love"]):
        (tmp_path / name).write_text("\n%\n".join(f"{name} quote {i}" for i in range(80 + c))
                                     + "\n")
    data = labelled_fortunes(3, tmp_path)
    assert data.categories == ("love", "food", "art")  # largest first
    texts = data.examples.texts
    assert all(t.startswith(data.categories[y]) for t, y in zip(texts, data.examples.labels,
                                                                 strict=True))
    users = category_users(data.examples, 4, alpha=0.5, min_rows=20,
                           max_rows=rows_for_train(30, SPLIT), seed=0)
    assert all(len(split_examples(u, SPLIT).train) <= 30 for u in users)
    assert users[0].source == "fortunes-3[user 0]"
