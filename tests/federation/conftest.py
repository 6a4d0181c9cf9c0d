"""A server key, a client key and a round-0 meta-recipe, made with the library."""

from __future__ import annotations

import pytest

from fedseed.data import load_digits
from fedseed.data.partition import partition
from fedseed.federation.client import load_identity
from fedseed.federation.server import ServerState, seal
from fedseed.provenance.keys import generate_key, load_private_key, public_pem
from fedseed.provenance.trust import TrustStore
from fedseed.recipe import Lineage, apply_assignment, load_builtin, recipe_digest


@pytest.fixture
def world():
    """(server key, trust store trusting it as server, client identity, round-0 state)."""
    generate_key("server")
    key, _ = load_private_key("server")
    trust, _ = TrustStore().add(public_pem(key.public_key()), "server", "server")
    client = load_identity("node-a", create=True)
    recipe = apply_assignment(load_builtin("digits-mlp"), {"budget.max_steps": 20,
                                                           "budget.eval_every": 10})
    meta0 = seal(recipe.model_copy(update={"lineage": Lineage(
        parents=[recipe_digest(recipe)], round=0, method="init")}), key, trust)
    return key, trust, client, ServerState(meta=meta0, baseline=meta0)


@pytest.fixture(scope="session")
def user_examples():
    return partition(load_digits(), 4, alpha=1.0)[0]
