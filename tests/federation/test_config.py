"""Federation settings: contradictory combinations are refused with one line, and the
trajectory defaults are defined once (fedseed.defaults) and mirrored by pyproject."""

from __future__ import annotations

import re
from dataclasses import fields

import pytest
import tomllib
from support import ROOT

from fedseed.defaults import TRAJECTORY
from fedseed.errors import FedseedError
from fedseed.federation.config import TRAJECTORY_FIELDS, FederationConfig
from fedseed.meta.trajectory import DEFAULTS as AGGREGATOR_DEFAULTS
from fedseed.recipe.trajectory import Trajectory

#: Run-config keys whose pyproject value differs from the library default on purpose:
#: `flwr run .` is a simulation, whose nodes share one $FEDSEED_HOME.
SIMULATION_ONLY = {"client-trust", "auto-keys"}


@pytest.mark.parametrize(("settings", "message"), [
    ({"aggregator": "trajectory"}, "set mode = 'trajectory'"),
    ({"mode": "trajectory", "aggregator": "fedex"}, "drop aggregator 'fedex'"),
    ({"mode": "trajectory", "warm_start": True}, "drop warm-start"),
    ({"pool_size": 256}, "pool-size applies only to mode 'trajectory'"),
    ({"zo_lr": 0.1, "server_lr": 1.0}, "zo-lr, server-lr apply only to mode 'trajectory'"),
    ({"quorum": 0.0}, "quorum must be in (0, 1]"),
    ({"grace": 700.0}, "grace must be in [0, timeout]"),
])
def test_contradictory_settings_are_refused(settings, message):
    with pytest.raises(FedseedError, match=re.escape(message)):
        FederationConfig(**settings)


def test_a_run_config_with_trajectory_keys_in_recipes_mode_is_refused():
    with pytest.raises(FedseedError, match="seeds-per-step applies only"):
        FederationConfig.from_run_config({"mode": "recipes", "seeds-per-step": 4})


def test_trajectory_settings_in_trajectory_mode_are_taken():
    cfg = FederationConfig(mode="trajectory", pool_size=256, seeds_per_step=4)

    assert (cfg.pool_size, cfg.seeds_per_step) == (256, 4)


def test_trajectory_defaults_are_one_definition():
    cfg = FederationConfig()
    schema = Trajectory(generator_version="2.13", pool_size=TRAJECTORY.pool_size)

    assert (cfg.pool_size, cfg.zo_steps, cfg.zo_lr, cfg.zo_epsilon, cfg.seeds_per_step,
            cfg.sampling, cfg.server_lr) == (
        TRAJECTORY.pool_size, TRAJECTORY.steps, TRAJECTORY.lr, TRAJECTORY.epsilon,
        TRAJECTORY.seeds_per_step, TRAJECTORY.sampling, TRAJECTORY.server_lr)
    assert (schema.steps, schema.lr, schema.epsilon, schema.seeds_per_step, schema.sampling,
            schema.server_lr) == (TRAJECTORY.steps, TRAJECTORY.lr, TRAJECTORY.epsilon,
                                  TRAJECTORY.seeds_per_step, TRAJECTORY.sampling,
                                  TRAJECTORY.server_lr)
    assert AGGREGATOR_DEFAULTS["lr"] == TRAJECTORY.lr
    assert len(TRAJECTORY_FIELDS) == 12  # 7 zeroth-order, the method, 4 first-order


def test_pyproject_run_config_mirrors_the_library_defaults():
    run_config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["flwr"]["app"][
        "config"]
    defaults = FederationConfig()

    known = {f.name.replace("_", "-"): f.name for f in fields(FederationConfig)}
    assert set(run_config) == set(known)  # every setting can be overridden by `flwr run`
    drift = {key: (value, getattr(defaults, known[key])) for key, value in run_config.items()
             if key not in SIMULATION_ONLY and value != getattr(defaults, known[key])}
    assert drift == {}
