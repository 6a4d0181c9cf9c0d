"""Partitions of one data set into simulated users, with Flower Datasets' partitioners.

Used by simulations and the demo; a real device brings its own data instead.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np

from fedseed.data.examples import Examples
from fedseed.errors import DataError

Partitioner = Literal["iid", "dirichlet"]

#: Data sets with a natural partition (one user per natural id): Debian's fortunes,
#: one user per category file. digits and toy-text carry no user or writer ids.
NATURAL_IDS: dict[str, str] = {"fortunes": "category file"}


def check_partitioner(dataset: str, partitioner: str) -> None:
    """Refuse a partitioner the data set cannot support, before any node starts."""
    if partitioner not in ("iid", "dirichlet", "natural"):
        raise DataError(f"partitioner '{partitioner}' is not iid, dirichlet or natural")
    if partitioner == "natural" and dataset not in NATURAL_IDS:
        raise DataError(f"dataset '{dataset}' has no natural partition (no user or writer "
                        "id column); use --partitioner iid or dirichlet")
    if partitioner != "natural" and dataset in NATURAL_IDS:
        raise DataError(f"dataset '{dataset}' is partitioned by its {NATURAL_IDS[dataset]} "
                        "(one user each); use --partitioner natural")


def partition(
    examples: Examples,
    num_partitions: int,
    *,
    partitioner: Partitioner = "dirichlet",
    alpha: float = 0.5,
    seed: int = 0,
    min_partition_size: int | None = None,
) -> list[Examples]:
    """Split ``examples`` into ``num_partitions`` users.

    ``dirichlet`` draws each class's share per user from Dir(``alpha``) (Hsu et al.,
    2019): small ``alpha`` gives users few classes each. ``iid`` shuffles and deals.
    Every user gets at least ``min_partition_size`` rows (default: 10, lowered to a
    quarter of the mean share, but never below 3, the least a train/validation/test
    split needs, when there are many users). When Flower Datasets' partitioner
    cannot meet that floor by redrawing (very small ``alpha`` with many users: digits
    at alpha 0.1 and 100 users), one Dirichlet draw is made and the smallest users are
    topped up with rows taken from the largest (:func:`dirichlet_with_floor`).
    """
    import datasets
    from flwr_datasets.partitioner import DirichletPartitioner, IidPartitioner

    if num_partitions < 1 or num_partitions > len(examples):
        raise DataError(
            f"{examples.source}: cannot make {num_partitions} partitions of {len(examples)} rows"
        )
    if examples.labels is None and partitioner == "dirichlet":
        raise DataError(f"{examples.source}: dirichlet partitioning needs labels")
    columns = {"row": np.arange(len(examples))}
    if examples.labels is not None:
        columns["label"] = examples.labels
    table = datasets.Dataset.from_dict({k: v.tolist() for k, v in columns.items()})
    if min_partition_size is None:
        min_partition_size = max(3, min(10, len(examples) // (4 * num_partitions)))
    if partitioner == "dirichlet":
        part = DirichletPartitioner(
            num_partitions=num_partitions, partition_by="label", alpha=alpha,
            min_partition_size=min_partition_size, self_balancing=True, seed=seed,
        )
    else:
        part = IidPartitioner(num_partitions=num_partitions)
    part.dataset = table
    out = []
    for pid in range(num_partitions):
        try:
            with warnings.catch_warnings():  # one DataError below says it all
                warnings.simplefilter("ignore", UserWarning)
                rows = np.asarray(part.load_partition(pid)["row"], dtype=np.int64)
        except ValueError as e:  # Flower Datasets gives up after repeated draws
            if num_partitions * min_partition_size > len(examples):
                raise DataError(
                    f"{examples.source}: cannot split {len(examples)} rows into "
                    f"{num_partitions} partitions of at least {min_partition_size} rows; "
                    "use fewer partitions") from e
            assert examples.labels is not None
            return [_named(examples.take(r), examples.source, i) for i, r in enumerate(
                dirichlet_with_floor(examples.labels, num_partitions, alpha,
                                     min_partition_size, seed))]
        out.append(_named(examples.take(rows), examples.source, pid))
    return out


def _named(sub: Examples, source: str, pid: int) -> Examples:
    return type(sub)(source=f"{source}[user {pid}]", features=sub.features, texts=sub.texts,
                     labels=sub.labels)


def dirichlet_with_floor(labels: np.ndarray, num_partitions: int, alpha: float,
                         min_size: int, seed: int) -> list[np.ndarray]:
    """Row indices per user: each class split by one Dir(``alpha``) draw, then users
    below ``min_size`` rows topped up with random rows of the currently largest user
    (which keeps the label skew everywhere except in those few moved rows)."""
    rng = np.random.default_rng(seed)
    users: list[list[int]] = [[] for _ in range(num_partitions)]
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label))
        shares = rng.dirichlet([alpha] * num_partitions)
        cuts = (np.cumsum(shares)[:-1] * len(rows)).astype(int)
        for user, chunk in enumerate(np.split(rows, cuts)):
            users[user].extend(chunk.tolist())
    while len(users[small := min(range(num_partitions), key=lambda u: len(users[u]))]) \
            < min_size:
        large = max(range(num_partitions), key=lambda u: len(users[u]))
        users[small].append(users[large].pop(int(rng.integers(len(users[large])))))
    return [np.asarray(sorted(u), dtype=np.int64) for u in users]
