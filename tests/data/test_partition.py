"""Partitioning a data set into simulated users."""

from __future__ import annotations

import numpy as np

from fedseed.data import load_digits
from fedseed.data.partition import partition


def test_dirichlet_partitions_cover_the_data_once_and_are_skewed():
    digits = load_digits()

    parts = partition(digits, 10, partitioner="dirichlet", alpha=0.1, seed=0)

    assert sum(len(p) for p in parts) == len(digits)
    assert all(len(p) >= 10 for p in parts)
    dominant = [np.bincount(p.labels, minlength=10).max() / len(p) for p in parts]
    assert np.mean(dominant) > 0.3  # IID would give about 0.1


def test_partitions_are_reproducible():
    digits = load_digits()

    a = partition(digits, 5, seed=1)
    b = partition(digits, 5, seed=1)

    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.labels, y.labels)


def test_iid_partitions_have_equal_sizes():
    parts = partition(load_digits(), 4, partitioner="iid")

    assert {len(p) for p in parts} <= {449, 450}
