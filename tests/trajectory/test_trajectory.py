"""Seed trajectories: the recipe section, exact replay across processes, signatures
over coefficients, the zeroth-order client step and the server's aggregation."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from pydantic import ValidationError
from support import synthetic_reply

from fedseed.errors import RecipeError
from fedseed.meta import AggregatorState, ClientReply, Options, TrajectoryAggregator
from fedseed.recipe import load_builtin
from fedseed.recipe.codec import canonical_bytes, canonical_dict, parse_recipe, recipe_digest
from fedseed.recipe.trajectory import (
    SeedUpdate,
    Trajectory,
    encode_floats,
    encode_indices,
)
from fedseed.trajectory.pool import seed_of, torch_version


def trajectory_recipe(name: str = "digits-mlp", pool: int = 64, seed: int = 0):
    rng = np.random.default_rng(seed)
    coefficients = (rng.standard_normal(pool) * 1e-3).astype(np.float32)
    t = Trajectory(generator_version=torch_version(), pool_size=pool, base_seed=7,
                   seeds_per_step=1, coefficients=encode_floats(coefficients))
    return load_builtin(name).model_copy(update={"trajectory": t})


def test_section_round_trips_and_changes_no_other_digest():
    recipe = trajectory_recipe()
    assert parse_recipe(canonical_bytes(recipe)) == recipe
    plain = load_builtin("digits-mlp")
    assert b"trajectory" not in canonical_bytes(plain)
    assert recipe_digest(recipe.model_copy(update={"trajectory": None})) == recipe_digest(plain)


@pytest.mark.parametrize("change, message", [
    ({"pool_size": 65}, "coefficients hold 64 values for a pool of 65"),
    ({"coefficients": "not base64!"}, "coefficients"),
    ({"update": {"seeds": encode_indices(np.array([70])),
                 "sums": encode_floats(np.array([1.0])), "steps": 1}}, "outside the pool"),
    ({"seeds_per_step": 100}, "seeds_per_step"),
])
def test_bad_sections_are_refused_naming_the_field(change, message):
    data = canonical_dict(trajectory_recipe())
    data["trajectory"].update(change)
    with pytest.raises(RecipeError, match=message):
        parse_recipe(json.dumps(data))


def test_update_seeds_must_be_ascending_and_aligned():
    with pytest.raises(ValidationError, match="ascending"):
        SeedUpdate(seeds=encode_indices(np.array([3, 1])),
                   sums=encode_floats(np.array([1.0, 2.0])), steps=1)
    with pytest.raises(ValidationError, match="2 seeds but 1 sums"):
        SeedUpdate(seeds=encode_indices(np.array([1, 3])),
                   sums=encode_floats(np.array([1.0])), steps=1)


def test_replay_is_w0_minus_the_weighted_perturbations():
    import torch

    from fedseed.assemble import assemble

    recipe = trajectory_recipe(pool=3)
    w0 = assemble(recipe.model_copy(update={"trajectory": None}))
    w = assemble(recipe)
    c = recipe.trajectory.coefficient_array()
    for (name, p0), (_, p) in zip(w0.named_parameters(), w.named_parameters(), strict=True):
        expected = p0.detach().clone()
        # z_k for this tensor: the k-th generator after the tensors before it.
        for k in range(3):
            g = torch.Generator().manual_seed(seed_of(7, k))
            for n2, q in w0.named_parameters():
                z = torch.randn(q.shape, generator=g)
                if n2 == name:
                    expected -= float(c[k]) * z
                    break
        assert torch.allclose(p.detach(), expected, atol=1e-6), name


def test_replay_is_bit_identical_in_separate_processes(fedseed, tmp_path):
    recipe_file = tmp_path / "traj.json"
    recipe_file.write_bytes(canonical_bytes(trajectory_recipe(pool=256)))
    digests = []
    for name in ("a", "b"):
        run = fedseed("assemble", str(recipe_file), "-o", str(tmp_path / f"{name}.safetensors"))
        assert run.code == 0, run.err
        digests.append(hashlib.sha256((tmp_path / f"{name}.safetensors").read_bytes())
                       .hexdigest())
    assert digests[0] == digests[1]
    plain = tmp_path / "plain.json"
    plain.write_bytes(canonical_bytes(load_builtin("digits-mlp")))
    assert fedseed("assemble", str(plain), "-o", str(tmp_path / "w0.safetensors")).code == 0
    assert hashlib.sha256((tmp_path / "w0.safetensors").read_bytes()).hexdigest() != digests[0]


def test_tampering_with_one_coefficient_breaks_the_signature(fedseed, tmp_path):
    import base64

    assert fedseed("keys", "generate", "srv").code == 0
    pub = tmp_path / "srv.pub"
    pub.write_text(fedseed("keys", "export", "srv").out)
    assert fedseed("trust", "add", str(pub), "--role", "publisher").code == 0
    recipe_file = tmp_path / "traj.json"
    recipe_file.write_bytes(canonical_bytes(trajectory_recipe()))
    signed = tmp_path / "traj.dsse.json"
    assert fedseed("recipe", "sign", str(recipe_file), "--key", "srv", "-o",
                   str(signed)).code == 0
    assert fedseed("recipe", "verify", str(signed)).code == 0
    envelope = json.loads(signed.read_text())
    payload = json.loads(base64.b64decode(envelope["payload"]))
    values = np.frombuffer(base64.b64decode(payload["trajectory"]["coefficients"]),
                           dtype="<f4").copy()
    values[5] += 1e-3  # one coefficient, a tiny move of the shared model
    payload["trajectory"]["coefficients"] = encode_floats(values)
    envelope["payload"] = base64.b64encode(json.dumps(
        payload, sort_keys=True, separators=(",", ":")).encode()).decode()
    tampered = tmp_path / "tampered.dsse.json"
    tampered.write_text(json.dumps(envelope))
    result = fedseed("recipe", "verify", str(tampered))
    assert result.code == 1 and "signature" in (result.err + result.out).lower()


def test_replay_on_another_generator_version_is_refused():
    from fedseed.assemble import assemble

    recipe = trajectory_recipe()
    other = recipe.model_copy(update={"trajectory": recipe.trajectory.model_copy(
        update={"generator_version": "1.0"})})
    with pytest.raises(RecipeError, match="generator_version 1.0"):
        assemble(other)


@pytest.fixture(scope="module")
def digits_users():
    from fedseed.data.builtin import load_builtin_dataset
    from fedseed.data.partition import partition

    return partition(load_builtin_dataset("digits"), 4, partitioner="iid", seed=0)


def test_zeroth_order_steps_lower_the_loss_with_forward_passes_only(digits_users):
    from fedseed.trajectory.zo import zo_train

    meta = TrajectoryAggregator(Options(), pool_size=256, steps=40, seeds_per_step=8,
                                lr=0.004).prepare(load_builtin("digits-mlp"))
    done = zo_train(meta, digits_users[0], seed=1)
    curve = done.recipe.evidence.curve
    assert curve[-1].val_loss < 0.9 * curve[0].val_loss or curve[-1].val_metric > 0.3
    update = done.recipe.trajectory.update
    assert update is not None and update.steps == 40
    assert done.recipe.trajectory.coefficients is None  # the parent's digest says which
    assert len(canonical_bytes(done.recipe)) < 16_000
    assert all(p.grad is None for p in done.model.parameters())  # no backward pass ran


def test_one_client_and_server_lr_1_moves_the_shared_model_like_the_client(digits_users):
    import torch

    from fedseed.assemble import assemble
    from fedseed.trajectory.zo import zo_train

    agg = TrajectoryAggregator(Options(robust=False), pool_size=128, steps=20,
                               seeds_per_step=4, lr=0.004, server_lr=1.0)
    meta = agg.prepare(load_builtin("digits-mlp"))
    done = zo_train(meta, digits_users[1], seed=3)
    reply = ClientReply(done.recipe, recipe_digest(done.recipe), 1, {})
    nxt, state = agg(meta, [reply], AggregatorState())
    shared = assemble(nxt)
    for (name, a), (_, b) in zip(shared.named_parameters(), done.model.named_parameters(),
                                 strict=True):
        assert torch.allclose(a, b, atol=2e-5), name
    assert state.values["clients"] == 1 and nxt.lineage.method == "trajectory"


def test_robust_aggregation_bounds_one_huge_update():
    agg = TrajectoryAggregator(Options(robust=True), pool_size=8, seeds_per_step=1,
                               server_lr=1.0)
    meta = agg.prepare(load_builtin("digits-mlp"))

    def reply(i, value):
        t = meta.trajectory.model_copy(update={"coefficients": None, "update": SeedUpdate(
            seeds=encode_indices(np.array([0, 1])), sums=encode_floats(np.array([value, 0.0])),
            steps=1)})
        evidence = synthetic_reply({}, 0.5).recipe.evidence
        r = meta.model_copy(update={"trajectory": t, "evidence": evidence})
        return ClientReply(r, f"sha256:{i:064x}", i, {})

    honest = [reply(i, 0.01) for i in range(3)]
    nxt, state = agg(meta, [*honest, reply(9, 1e6)], AggregatorState())
    c = nxt.trajectory.coefficient_array()
    assert abs(c[0]) <= 0.0100001 and state.values["clipped"] == 1


def test_pro_sampling_favours_seeds_that_moved_the_model():
    from fedseed.trajectory.zo import seed_probabilities

    recipe = trajectory_recipe(pool=4)
    c = np.array([0.0, 0.0, 0.0, 1.0], dtype=np.float32)
    t = recipe.trajectory.model_copy(update={"coefficients": encode_floats(c),
                                             "sampling": "pro", "pro_alpha": 2.0})
    p = seed_probabilities(recipe.model_copy(update={"trajectory": t}))
    assert p[3] > p[0] and abs(p.sum() - 1) < 1e-9
    uniform = seed_probabilities(recipe)
    assert np.allclose(uniform, 0.25)


def test_meta_recipe_size_does_not_grow_with_the_model():
    sizes = {}
    for name in ("digits-mlp", "text-bert-tiny"):
        meta = TrajectoryAggregator(Options(), pool_size=4096).prepare(load_builtin(name))
        sizes[name] = len(canonical_bytes(meta))
    # 4,096 float32 coefficients are 21,848 base64 characters; the rest is the recipe.
    assert all(22_000 < s < 25_000 for s in sizes.values()), sizes
    assert abs(sizes["digits-mlp"] - sizes["text-bert-tiny"]) < 1_000


def test_a_diverged_zeroth_order_client_reports_it_and_moves_nothing(digits_users):
    from fedseed.errors import AggregationError
    from fedseed.recipe.evidence import WORST_LOSS
    from fedseed.trajectory.zo import zo_train

    agg = TrajectoryAggregator(Options(robust=False), pool_size=64, steps=20, lr=10.0,
                               server_lr=1.0)
    meta = agg.prepare(load_builtin("digits-mlp"))
    done = zo_train(meta, digits_users[2], seed=5)  # lr 10: the loss blows up in a few steps
    diverged = ClientReply(done.recipe, recipe_digest(done.recipe), 2, {})
    honest = meta.model_copy(update={"evidence": synthetic_reply({}, 0.5).recipe.evidence,
                                     "trajectory": meta.trajectory.model_copy(update={
                                         "coefficients": None, "update": SeedUpdate(
                                             seeds=encode_indices(np.array([0])),
                                             sums=encode_floats(np.array([0.01])), steps=1)})})

    nxt, state = agg(meta, [ClientReply(honest, "sha256:" + "1" * 64, 1, {}), diverged],
                     AggregatorState())

    ev = done.recipe.evidence
    assert ev.diverged and ev.steps < 20 and ev.final.val_loss == WORST_LOSS
    assert done.recipe.trajectory.update.sums == ""  # a diverged client moves nothing
    assert state.values["clients"] == 1  # its weight does not dilute the others' either
    assert nxt.trajectory.coefficient_array()[0] == pytest.approx(0.01)
    with pytest.raises(AggregationError, match="diverge"):
        agg(meta, [diverged], AggregatorState())
