"""Private federations end to end: in process (the real client logic, judge,
aggregators and signatures) for every mode, and once through `fedseed simulate` on
Flower's simulation runtime. The epsilon spent is signed in every meta-recipe."""

from __future__ import annotations

import json

import pytest
from support import run_fedseed

from fedseed import (
    FedseedStrategy,
    load_builtin,
    partition,
    server_identity,
    with_step_budget,
)
from fedseed.data.builtin import load_builtin_dataset
from fedseed.errors import FedseedError
from fedseed.federation.config import FederationConfig
from fedseed.federation.from_config import aggregator_for, round_settings
from fedseed.federation.server import judge_reply
from fedseed.federation.strategy import RoundSettings
from fedseed.privacy.accountant import epsilon_after
from fedseed.privacy.settings import default_delta
from fedseed.provenance.envelope import Envelope
from fedseed.recipe import parse_recipe, recipe_digest

USERS = 5


@pytest.fixture(scope="module")
def users():
    return partition(load_builtin_dataset("digits"), USERS, partitioner="dirichlet", seed=0)


def chain_of_epsilons(registry, name, rounds):
    out = []
    for r in range(rounds + 1):
        meta = parse_recipe(registry.fetch(f"{name}:round-{r}").payload)
        out.append((meta.privacy.rounds, meta.privacy.epsilon))
    return out


@pytest.mark.parametrize("config", [
    {"dp": "central", "dp_epsilon": 8.0},
    {"dp": "local", "dp_epsilon": 8.0},
    {"dp": "central", "dp_epsilon": 8.0, "mode": "trajectory",
     "trajectory_method": "first-order", "projection_k": 32, "dp_clip": 0.05},
    {"dp": "local", "dp_epsilon": 8.0, "mode": "trajectory", "pool_size": 16,
     "zo_steps": 5, "dp_clip": 0.5},
], ids=["recipes-central", "recipes-local", "first-order-central", "zeroth-order-local"])
def test_every_round_is_accepted_accounted_and_signed(tmp_path, users, config, federate):
    strategy, registry, result = federate(tmp_path, users, **config)
    assert [r.accepted for r in result.rounds] == [USERS] * 3
    assert all(r.rejected == {} and r.array_records == 0 for r in result.rounds)
    assert all(r.val_mean is None for r in result.rounds)  # no exact metric released
    spent = chain_of_epsilons(registry, result.meta_name, 3)
    assert [r for r, _ in spent] == [0, 1, 2, 3]
    epsilons = [e for _, e in spent]
    assert epsilons[0] == 0 and epsilons == sorted(epsilons) and epsilons[-1] <= 8.0
    p = result.meta.privacy
    assert p.mode == config["dp"] and p.delta == pytest.approx(default_delta(USERS))
    assert p.delta < 1 / USERS
    assert p.epsilon == pytest.approx(epsilon_after(p, 3))  # the library's own figure
    assert result.privacy["epsilon"] == p.epsilon
    published = [e for e in registry.entries() if e.name.endswith("-clients")]
    # A trusted (central) server never republishes the exact client recipes, nor names
    # them: a meta-recipe's parent is then the previous meta-recipe.
    assert bool(published) == (config["dp"] == "local")
    for r in range(1, 4):
        meta = parse_recipe(registry.fetch(f"{result.meta_name}:round-{r}").payload)
        before = recipe_digest(parse_recipe(
            registry.fetch(f"{result.meta_name}:round-{r - 1}").payload))
        names_clients = meta.lineage.parents != [before]
        assert names_clients == (config["dp"] == "local")
        assert len(meta.lineage.parents) == (USERS if config["dp"] == "local" else 1)


def test_a_federation_stops_before_the_round_that_would_pass_its_target(tmp_path, users, federate):
    from fedseed.privacy.accountant import calibrate

    sigma = calibrate(4.0, 2, 1 / USERS, USERS)  # two rounds' worth of the target
    _, _, result = federate(tmp_path, users, rounds=5, dp="central", dp_epsilon=4.0,
                            dp_noise_multiplier=sigma, dp_delta=1 / USERS)
    assert len(result.rounds) == 2
    assert result.privacy["stopped_at_round"] == 3
    assert result.meta.privacy.rounds == 2 and result.meta.privacy.epsilon <= 4.0


def test_a_device_that_does_not_noise_under_local_dp_is_refused(tmp_path, users, federate):
    from fedseed.federation.client import new_identity
    from fedseed.personalize import personalize_examples
    from fedseed.provenance.packed import pack
    from fedseed.provenance.sign import sign_recipe

    strategy, _, _ = federate(tmp_path, users, rounds=1, dp="local", dp_epsilon=8.0)
    state = strategy.state
    meta = state.meta.recipe
    done = personalize_examples(meta, users[0], method="client")  # exact evidence
    me = new_identity()
    child = done.recipe.model_copy(update={"lineage": done.recipe.lineage.model_copy(
        update={"producer": me.keyid})})
    verdict = judge_reply(99, pack(sign_recipe(child, me.key, me.keyid)), me.pubkey_pem, {},
                          state, strategy.trust, "tofu", set())
    assert verdict.reason == "not private"


def test_dp_settings_are_checked_by_name():
    with pytest.raises(FedseedError, match="dp-clip set but dp is off"):
        FederationConfig(dp_clip=0.5)
    with pytest.raises(FedseedError, match="warm-start"):
        FederationConfig(dp="central", dp_epsilon=1.0, warm_start=True)
    with pytest.raises(FedseedError, match="task-labels"):
        FederationConfig(dp="central", dp_epsilon=1.0, task_labels="10,2")
    with pytest.raises(FedseedError, match="dp-epsilon .a target. or dp-noise-multiplier"):
        FederationConfig(dp="local")
    assert FederationConfig.from_run_config({"dp": "central", "dp-epsilon": "8"}
                                            ).privacy_settings().target_epsilon == 8.0
    assert RoundSettings().privacy is None


@pytest.mark.slow
def test_simulate_with_dp_signs_epsilon_and_recipe_show_prints_it(tmp_path, quick_recipe):
    home = tmp_path / "sim"
    done = run_fedseed("simulate", "--clients", "4", "--rounds", "2", "--fraction", "1.0",
                       "--recipe", str(quick_recipe), "--dp", "central", "--dp-epsilon", "8",
                       "--home", str(home), "--no-final")
    assert done.code == 0, done.err[-3000:]
    assert "privacy: epsilon" in done.out and "of target 8" in done.out
    report = json.loads((home / "report.json").read_text())
    assert all(r["accepted"] == 4 and r["array_records"] == 0 for r in report["rounds"])
    assert 0 < report["privacy"]["epsilon"] <= 8.0 and report["privacy"]["rounds"] == 2
    pulled = run_fedseed("recipe", "pull", "digits-quick-meta:latest", "-o",
                         str(tmp_path / "meta.json"), "--registry", str(home / "registry"),
                         env={"FEDSEED_HOME": str(home)})
    assert pulled.code == 0, pulled.err
    meta = parse_recipe(Envelope.from_json((tmp_path / "meta.json").read_bytes()).payload)
    shown = run_fedseed("recipe", "show", str(tmp_path / "meta.json"),
                        env={"FEDSEED_HOME": str(home)})
    assert shown.code == 0, shown.err
    assert f"epsilon {meta.privacy.epsilon:.3g} spent of target 8" in shown.out
    assert "central Gaussian" in shown.out


def test_a_round_that_does_not_aggregate_is_still_accounted(tmp_path, users, federate):
    # min_replies above the node count: no round aggregates, every round's replies
    # were sent all the same (and published, under local DP).
    _, _, result = federate(tmp_path, users, rounds=2, min_replies=USERS + 1, dp="local",
                            dp_epsilon=8.0)
    assert [r.accepted for r in result.rounds] == [USERS, USERS]
    assert result.meta.privacy.rounds == 2 and result.meta.lineage.method == "privacy-spent"
    assert result.meta.privacy.epsilon == pytest.approx(epsilon_after(result.meta.privacy, 2))


def test_no_round_runs_past_the_target_and_resume_keeps_the_protection(tmp_path, users, federate):
    from fedseed.errors import AggregationError
    from fedseed.privacy.accountant import calibrate

    sigma = calibrate(4.0, 1, 1 / USERS, USERS)
    strategy, registry, result = federate(tmp_path, users, rounds=1, dp="central",
                                          dp_epsilon=4.0, dp_noise_multiplier=sigma,
                                          dp_delta=1 / USERS)
    assert result.meta.privacy.rounds == 1
    with pytest.raises(AggregationError, match="privacy budget is spent"):
        strategy.configure_train(2, list(range(USERS)))
    key, trust = server_identity(home=tmp_path, create=True)
    for changed in ({}, {"dp": "central", "dp_epsilon": 4.0, "dp_clip": 2.0},
                    {"dp": "local", "dp_epsilon": 4.0}):
        cfg = FederationConfig(num_rounds=3, fraction=1.0, min_nodes=USERS,
                               client_trust="tofu", final_personalization=False,
                               resume=True, **changed)
        again = FedseedStrategy(aggregator_for(cfg),
                                with_step_budget(load_builtin("digits-mlp"), 20), key=key,
                                trust=trust, registry=registry, settings=round_settings(cfg))
        with pytest.raises(AggregationError, match="cannot resume"):
            again.initialize(resume=True)


def test_a_reply_marked_noised_must_hold_only_noisy_losses(tmp_path, users, federate):
    from fedseed.federation.client import new_identity
    from fedseed.personalize import personalize_examples
    from fedseed.privacy.mechanisms import private_reply
    from fedseed.provenance.packed import pack
    from fedseed.provenance.sign import sign_recipe

    strategy, _, _ = federate(tmp_path, users, rounds=1, dp="local", dp_epsilon=8.0)
    state = strategy.state
    honest = private_reply(personalize_examples(state.meta.recipe, users[0],
                                                method="client").recipe)
    ev = honest.evidence
    lies = {"counts": ev.model_copy(update={"num_examples": ev.num_examples.model_copy(
                update={"train": 123})}),
            "out of the box": ev.model_copy(update={"curve": [
                p.model_copy(update={"val_loss": 99.0}) for p in ev.curve]}),
            "timing": ev.model_copy(update={"wall_seconds": 4.2})}
    me = new_identity()

    def verdict(evidence):
        child = honest.model_copy(update={"evidence": evidence,
                                          "lineage": honest.lineage.model_copy(
                                              update={"producer": me.keyid})})
        return judge_reply(99, pack(sign_recipe(child, me.key, me.keyid)), me.pubkey_pem,
                           {}, state, strategy.trust, "tofu", set()).reason

    assert verdict(ev) is None  # the honest, noised reply is accepted
    for name, lie in lies.items():
        assert verdict(lie) == "not private", name
