"""A device's own privacy policy: it refuses what its ledger says would pass its bound,
whatever the server's meta-recipe claims (local DP does not trust the server)."""

from __future__ import annotations

import json

import pytest

from fedseed import (
    partition,
)
from fedseed.data.builtin import load_builtin_dataset
from fedseed.errors import DataError
from fedseed.privacy.accountant import calibrate, epsilon_of_releases
from fedseed.privacy.device import DevicePolicy, policy_from_node_config

USERS = 4


@pytest.fixture(scope="module")
def users():
    return partition(load_builtin_dataset("digits"), USERS, partitioner="dirichlet", seed=0)


def test_a_device_refuses_a_server_that_does_not_let_it_add_its_own_noise(
        tmp_path, users, federate):
    policy = DevicePolicy(require="local", max_epsilon=8.0, max_delta=0.5)
    for config in ({}, {"dp": "central", "dp_epsilon": 8.0}):
        _, _, result = federate(tmp_path / str(len(config)), users, rounds=1, policy=policy,
                                **config)
        assert result.rounds[0].accepted == 0
        assert result.rounds[0].rejected == {"client error": USERS}


def test_the_ledger_not_the_meta_recipe_decides_when_a_device_stops(tmp_path, users, federate):
    # The federation's target allows 4 rounds; each device allows itself 2 of them.
    sigma = calibrate(8.0, 4, 0.2, USERS)
    own = epsilon_of_releases([sigma] * 2, 0.2, USERS)
    policy = DevicePolicy(require="local", max_epsilon=own * 1.001, max_delta=0.25)
    _, _, result = federate(tmp_path, users, rounds=4, policy=policy, dp="local",
                            dp_epsilon=8.0, dp_noise_multiplier=sigma, dp_delta=0.2)
    assert [r.accepted for r in result.rounds] == [USERS, USERS, 0, 0]
    ledgers = sorted((tmp_path / "ledgers").glob("node-*.json"))
    assert len(ledgers) == USERS
    for path in ledgers:
        assert json.loads(path.read_text()) == {"digits-mlp": [sigma, sigma]}


def test_a_device_with_a_policy_refuses_the_exact_final_evaluation(tmp_path, users, federate):
    policy = DevicePolicy(require="local", max_epsilon=50.0, max_delta=0.5)
    _, _, result = federate(tmp_path, users, rounds=1, final=True, policy=policy, dp="local",
                            dp_epsilon=8.0)
    assert result.rounds[0].accepted == USERS
    assert result.final["reported"] == 0


def test_the_node_config_policy_is_read_strictly():
    assert policy_from_node_config({}) is None
    p = policy_from_node_config({"dp-require": "local", "dp-max-epsilon": "4"})
    assert p == DevicePolicy(require="local", max_epsilon=4.0)
    with pytest.raises(DataError, match="without dp-require"):
        policy_from_node_config({"dp-max-epsilon": 4})
    with pytest.raises(DataError, match="dp-require must be local or central"):
        policy_from_node_config({"dp-require": "none"})
