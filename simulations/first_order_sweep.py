"""How `fedseed bench trajectory --first-order` got its settings: a small sweep of the
local lr, the server lr, K, rounds and robust clipping on digits (20 users, Dirichlet
0.5), scored on the users' *validation* splits, never their test splits. Each line it
prints is one federation: the settings, the shared model's mean validation accuracy
after the last round and after round 10, bytes per client over the run, seconds.

Run from the repository root, one JSON list of settings per call (fields of
``fedseed.bench.first_order.FirstOrderSettings``)::

    .venv/bin/python simulations/first_order_sweep.py \\
        '[{"lr": 0.01, "server_lr": 1.0, "k": 600, "dtype": "float16", "rounds": 40}]'

The sweep behind the defaults (2026-12-02) is in docs/results/trajectory_first_order.md.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from dataclasses import replace

import torch

from fedseed.bench import first_order as fo
from fedseed.data.builtin import load_builtin_dataset
from fedseed.data.examples import split_examples
from fedseed.data.partition import partition
from fedseed.data.tensors import to_tensors
from fedseed.train.objectives import evaluate


def validation_accuracy(model, recipe, users) -> float:
    return statistics.fmean(
        float(evaluate(model, to_tensors(split_examples(u, recipe.split).validation, recipe),
                       recipe)[1]) for u in users)


def main(grid: list[dict]) -> None:
    torch.set_num_threads(1)  # two sweeps side by side, one per core
    fo._shared_accuracy = validation_accuracy  # select on validation, report on test
    base = fo.FirstOrderSettings(fedavg=False)
    users = list(partition(load_builtin_dataset("digits"), base.users,
                           partitioner="dirichlet", alpha=base.alpha, seed=base.seed))
    for changes in grid:
        started = time.time()
        run = fo.run_projection(replace(base, **changes), users)
        history = [h["shared_accuracy"] for h in run["history"]]
        print(json.dumps({**changes, "validation": run["final_shared_accuracy"],
                          "validation_round_10": history[min(9, len(history) - 1)],
                          "bytes_per_client": round(run["bytes_per_client"]),
                          "seconds": round(time.time() - started)}), flush=True)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
