"""Partitions of one data set into simulated users, with Flower Datasets' partitioners.

Used by simulations and the demo; a real device brings its own data instead.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from fedseed.data.examples import Examples
from fedseed.errors import DataError

Partitioner = Literal["iid", "dirichlet"]


def partition(
    examples: Examples,
    num_partitions: int,
    *,
    partitioner: Partitioner = "dirichlet",
    alpha: float = 0.5,
    seed: int = 0,
    min_partition_size: int = 10,
) -> list[Examples]:
    """Split ``examples`` into ``num_partitions`` users.

    ``dirichlet`` draws each class's share per user from Dir(``alpha``) (Hsu et al.,
    2019): small ``alpha`` gives users few classes each. ``iid`` shuffles and deals.
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
        rows = np.asarray(part.load_partition(pid)["row"], dtype=np.int64)
        sub = examples.take(rows)
        out.append(type(sub)(source=f"{examples.source}[user {pid}]", features=sub.features,
                             texts=sub.texts, labels=sub.labels))
    return out
