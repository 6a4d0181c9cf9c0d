"""The FedAvg baseline on Flower's real simulation runtime (no mocks): it learns, and
what it reports (bytes, steps) matches what FedAvg must have sent."""

from __future__ import annotations

import numpy as np
import pytest

from fedseed.assemble import assemble, parameter_count
from fedseed.data.builtin import load_builtin_dataset
from fedseed.data.examples import Examples, split_examples
from fedseed.data.partition import partition
from fedseed.recipe import resolve_recipe

ROUNDS, LOCAL_STEPS, CLIENTS, FRACTION = 2, 20, 4, 0.5


@pytest.fixture(scope="module")
def digits():
    recipe = resolve_recipe("digits-mlp")
    clients = partition(load_builtin_dataset("digits"), CLIENTS, partitioner="iid", seed=0)
    return recipe, clients


@pytest.fixture(scope="module")
def first_run(digits, tmp_path_factory):
    from fedseed.bench.fedavg import run_fedavg

    recipe, clients = digits
    seen: list[int] = []
    result = run_fedavg(recipe, clients, rounds=ROUNDS, local_steps=LOCAL_STEPS,
                        fraction=FRACTION, seed=1, on_round=seen.append, parallel=1)
    return result, seen


def _pooled_test(recipe, clients) -> Examples:
    tests = [split_examples(c, recipe.split).test for c in clients]
    return Examples(source="pooled-test", features=np.concatenate([t.features for t in tests]),
                    labels=np.concatenate([t.labels for t in tests]))


@pytest.mark.slow
def test_fedavg_learns_and_reports_what_crossed_the_wire(digits, first_run):
    from fedseed.data.tensors import to_tensors
    from fedseed.train.objectives import evaluate

    # Prepare
    recipe, clients = digits
    result, seen = first_run
    model = assemble(recipe)

    # Execute
    model.load_state_dict(result.state_dict)
    _, accuracy = evaluate(model, to_tensors(_pooled_test(recipe, clients), recipe), recipe)

    # Assert
    assert accuracy > 0.5  # chance is 0.1
    assert set(result.state_dict) == set(assemble(recipe).state_dict())
    # float32 weights, every sampled client every round (half of them each round)
    weights = FRACTION * ROUNDS * 4 * parameter_count(recipe)
    assert result.bytes_up_per_client == pytest.approx(weights, rel=0.1)
    assert result.bytes_down_per_client == pytest.approx(weights, rel=0.1)
    assert result.steps_per_client == FRACTION * ROUNDS * LOCAL_STEPS
    assert [row["round"] for row in result.history] == [1, 2] and seen == [1, 2]
    assert all(row["sampled"] == row["replies"] == CLIENTS // 2 for row in result.history)
    assert result.history[1]["train_loss"] < result.history[0]["train_loss"]
