"""One private federation in process, as the tests of this folder run it."""

from __future__ import annotations

import pytest

from fedseed import (
    FedseedStrategy,
    InProcessTransport,
    load_builtin,
    open_registry,
    server_identity,
    with_step_budget,
)
from fedseed.federation.config import FederationConfig
from fedseed.federation.from_config import aggregator_for, round_settings


@pytest.fixture
def federate():
    """``federate(home, users, rounds=3, final=False, policy=None, **config)``: a
    digits-mlp federation (20 steps a round) of every user, with ``config``'s dp keys;
    returns (strategy, registry, result)."""

    def run(home, users, rounds=3, final=False, policy=None, **config):
        key, trust = server_identity(home=home, create=True)
        registry = open_registry(str(home / "registry"), trust)
        cfg = FederationConfig(num_rounds=rounds, fraction=1.0, min_nodes=len(users),
                               client_trust="tofu", final_personalization=final, **config)
        strategy = FedseedStrategy(aggregator_for(cfg),
                                   with_step_budget(load_builtin("digits-mlp"), 20), key=key,
                                   trust=trust, registry=registry,
                                   settings=round_settings(cfg))
        transport = InProcessTransport(users, trust, registry=registry, policy=policy,
                                       ledgers=home / "ledgers" if policy else None)
        return strategy, registry, strategy.start(transport)

    return run
