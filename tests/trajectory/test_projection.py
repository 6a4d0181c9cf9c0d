"""First-order seed projection: bases, chain replay, catch-up, aggregation, refusals."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from support import HANG_GUARD

from fedseed.assemble import state_dict_digest
from fedseed.errors import AggregationError, RecipeError
from fedseed.meta import AggregatorState, ClientReply, Options
from fedseed.meta.projection import ProjectionAggregator
from fedseed.recipe import load_builtin
from fedseed.recipe.codec import canonical_bytes, parse_recipe, recipe_digest
from fedseed.recipe.trajectory import decode_floats, encode_floats
from fedseed.trajectory.bases import apply_sketch, project_sketch, sketch_hash
from fedseed.trajectory.chain import ChainCache, shared_model
from fedseed.trajectory.projection import apply_round, plan_groups, project, scale_of

K = 64


def _meta0():
    return ProjectionAggregator(Options(seed=3), total_k=K).prepare(load_builtin("digits-mlp"))


def _chain(rounds: int = 3):
    """A chain of ``rounds`` meta-recipes with random coefficients (no training)."""
    agg, meta = ProjectionAggregator(Options(robust=False), total_k=K), _meta0()
    state, chain = AggregatorState(), [meta]
    rng = np.random.default_rng(0)
    for _ in range(rounds):
        p = meta.projection
        reply = meta.model_copy(update={
            "projection": p.model_copy(update={
                "round": p.round + 1, "previous": recipe_digest(meta),
                "update": encode_floats(rng.standard_normal(p.total_k) * 1e-3)}),
            "evidence": _evidence(), "lineage": None})
        meta, state = agg(meta, [ClientReply(reply, recipe_digest(reply), 0, {})], state)
        chain.append(meta)
    return chain


def _evidence():
    from fedseed.recipe.evidence import CurvePoint, Evidence, ExampleCounts, FinalMetrics

    return Evidence(curve=[CurvePoint(step=10, val_loss=1.0, val_metric=0.5)],
                    final=FinalMetrics(val_loss=1.0, val_metric=0.5),
                    num_examples=ExampleCounts(train=50, validation=10, test=10), steps=10,
                    best_step=10, stopped_early=False, wall_seconds=0.1)


def test_plan_splits_k_by_size_with_a_floor_and_sketches_large_tensors():
    groups = plan_groups([("emb", 2_000_000), ("w", 9_000), ("b", 10)], 1024,
                         floor=8, dense_limit=1_000_000)
    assert [g.basis for g in groups] == ["count-sketch", "gaussian", "gaussian"]
    assert groups[0].k > groups[1].k and groups[2].k == 8
    assert min(g.k for g in plan_groups([("b", 3)], 64)) == 3  # k <= size for Gaussian


def test_count_sketch_recovers_a_sparse_vector_and_is_unbiased():
    d, k = 100_000, 512
    delta = torch.zeros(d)
    hot = torch.tensor([7, 1234, 50_000, 99_999])
    delta[hot] = torch.tensor([1.0, -2.0, 0.5, 3.0])
    estimates = []
    for seed in range(40):
        sketch = project_sketch(delta, seed, k)
        back = torch.zeros(d)
        apply_sketch(back, seed, sketch, 1.0, chunk=30_000)  # chunking changes nothing
        bucket, _ = sketch_hash(seed, hot.numpy(), k)
        if len(set(bucket.tolist())) == len(bucket):  # no collision: exact recovery
            assert torch.equal(back[hot], delta[hot])
        estimates.append(back[hot].numpy())
    # Unbiased: collisions cancel on average (signs are independent of each other).
    assert np.allclose(np.mean(estimates, axis=0), delta[hot].numpy(), atol=0.2)


def test_gaussian_projection_is_an_unbiased_estimate_of_the_update():
    meta = _meta0()
    p = meta.projection.model_copy(update={"groups": plan_groups([("net.4.bias", 10)], 4, floor=1)})
    delta = torch.linspace(-1, 1, 10)
    total = torch.zeros(10)
    for r in range(1, 401):
        a = project([delta], p, r)
        w = torch.zeros(10)
        apply_round(_Bias(w), p.model_copy(update={"round": r, "previous": "sha256:" + "0" * 64,
                                                    "coefficients": encode_floats(a)}))
        total += w
    assert scale_of(p.groups[0]) == 2.5
    assert torch.allclose(total / 400, delta, atol=0.15)


class _Bias(torch.nn.Module):
    """A module whose one tensor is named like digits-mlp's last bias."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.net = torch.nn.ModuleList([torch.nn.Identity()] * 4 + [torch.nn.Linear(1, 10)])
        del self.net[4].weight
        self.net[4].bias = torch.nn.Parameter(w, requires_grad=True)

    def named_parameters(self, *args, **kwargs):  # noqa: D102 - only the bias
        yield "net.4.bias", self.net[4].bias


def test_catch_up_from_a_cache_or_from_w0_gives_the_round_by_round_model():
    chain = _chain(3)
    by_digest = {recipe_digest(m): m for m in chain}
    cache = ChainCache(keep=10)
    for meta in chain:  # a device that kept w_r applies one round at a time
        step = shared_model(meta, None, cache)
        assert step.rounds == (1 if meta.projection.round else 0)
    kept = state_dict_digest(step.model)
    fresh = shared_model(chain[-1], by_digest.__getitem__)  # a new device: from w0
    assert fresh.rounds == 3 and state_dict_digest(fresh.model) == kept
    assert fresh.fetched_bytes == sum(len(canonical_bytes(m)) for m in chain[:-1])
    late = ChainCache()
    shared_model(chain[1], by_digest.__getitem__, late)  # missed rounds 2 and 3
    caught = shared_model(chain[-1], by_digest.__getitem__, late)
    assert caught.rounds == 2 and state_dict_digest(caught.model) == kept
    with pytest.raises(RecipeError, match="no registry"):
        shared_model(chain[-1])


def test_replay_of_a_chain_is_bit_identical_in_another_process(tmp_path):
    chain = _chain(2)
    paths = []
    for i, meta in enumerate(chain):
        paths.append(str(tmp_path / f"r{i}.json"))
        (tmp_path / f"r{i}.json").write_bytes(canonical_bytes(meta))
    here = state_dict_digest(shared_model(chain[-1], {recipe_digest(m): m
                                                      for m in chain}.__getitem__).model)
    code = ("import sys, json\n"
            "from fedseed.recipe.codec import read_recipe_file, recipe_digest\n"
            "from fedseed.trajectory.chain import shared_model\n"
            "from fedseed.assemble import state_dict_digest\n"
            "c = [read_recipe_file(p) for p in sys.argv[1:]]\n"
            "d = {recipe_digest(m): m for m in c}\n"
            "print(state_dict_digest(shared_model(c[-1], d.__getitem__).model))\n")
    run = subprocess.run([sys.executable, "-c", code, *paths], capture_output=True, text=True,
                         timeout=HANG_GUARD, check=True)
    assert run.stdout.strip() == here
    w0 = state_dict_digest(shared_model(chain[0]).model)
    assert w0 != here


def test_tampering_with_one_coefficient_breaks_the_signature():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from fedseed.provenance.envelope import Envelope, sign_envelope, verify_signatures

    meta = _chain(1)[-1]
    key = Ed25519PrivateKey.generate()
    signed = sign_envelope(Envelope(payload=canonical_bytes(meta)), key, "k")
    assert verify_signatures(signed, {"k": key.public_key()}) == ["k"]
    payload = json.loads(signed.payload)
    values = decode_floats(payload["projection"]["coefficients"]).copy()
    values[3] += 1e-4
    payload["projection"]["coefficients"] = encode_floats(values)
    tampered = Envelope(payload=canonical_bytes(parse_recipe(json.dumps(payload))),
                        signatures=signed.signatures)
    assert verify_signatures(tampered, {"k": key.public_key()}) == []


def test_bad_settings_are_refused_in_one_line():
    meta = _chain(1)[-1]
    p = meta.projection
    with pytest.raises(ValidationError, match="coefficients hold 3 float32 values"):
        type(p).model_validate({**p.model_dump(), "coefficients": encode_floats(np.zeros(3))})
    with pytest.raises(ValidationError, match="need previous"):
        type(p).model_validate({**p.model_dump(), "previous": None})
    with pytest.raises(RecipeError, match="generator_version 1.0"):
        shared_model(meta.model_copy(update={"projection": p.model_copy(
            update={"generator_version": "1.0"})}), None, None)
    stale = meta.model_copy(update={"projection": p.model_copy(update={
        "update": encode_floats(np.ones(p.total_k)), "coefficients": None}),
        "evidence": _evidence()})
    with pytest.raises(AggregationError, match="this round's coefficients"):
        ProjectionAggregator(Options())(meta, [ClientReply(stale, "d", 0, {})],
                                        AggregatorState(round=1))


def test_robust_aggregation_clips_one_huge_reply():
    meta = _meta0()
    p, agg = meta.projection, ProjectionAggregator(Options(robust=True), total_k=K)
    replies = []
    for node, size in enumerate([1.0, 1.0, 1e6]):
        reply = meta.model_copy(update={"projection": p.model_copy(update={
            "round": 1, "previous": recipe_digest(meta),
            "update": encode_floats(np.full(p.total_k, size))}), "evidence": _evidence()})
        replies.append(ClientReply(reply, recipe_digest(reply), node, {}))
    nxt, state = agg(meta, replies, AggregatorState())
    assert np.allclose(decode_floats(nxt.projection.coefficients), 1.0)
    assert state.values["clipped"] == 1 and nxt.projection.previous == recipe_digest(meta)


def test_a_new_device_catches_up_from_the_registry_with_server_signed_links(tmp_path,
                                                                            monkeypatch):
    from fedseed.federation import client
    from fedseed.provenance.envelope import Envelope, sign_envelope
    from fedseed.provenance.keys import export_public, generate_key, load_private_key
    from fedseed.provenance.trust import load_trust, save_trust
    from fedseed.registry.client import open_registry

    generate_key("srv")
    key, kid = load_private_key("srv")
    trust, _ = load_trust().add(export_public("srv"), "server", "srv")
    trust, _ = trust.add(export_public("srv"), "publisher", "srv")
    save_trust(trust)
    registry = open_registry(str(tmp_path / "reg"), trust)
    chain = _chain(2)
    for meta in chain:
        registry.publish(sign_envelope(Envelope(payload=canonical_bytes(meta)), key, kid),
                         name="digits-mlp-meta")
    monkeypatch.setattr(client, "_CHAINS", None)
    client.use_registry(str(tmp_path / "reg"))
    caught = client.projected_shared_model(chain[-1])
    assert caught.rounds == 2
    assert caught.fetched_bytes == sum(len(canonical_bytes(m)) for m in chain[:-1])
    expected = shared_model(chain[-1], {recipe_digest(m): m for m in chain}.__getitem__)
    assert state_dict_digest(caught.model) == state_dict_digest(expected.model)
    assert client.projected_shared_model(chain[-1]).rounds == 0  # kept in this process
    client.use_registry(None)


def test_float16_coefficients_halve_the_bytes_and_replay_exactly():
    from fedseed.recipe.trajectory import decode_values, encode_values

    meta32 = ProjectionAggregator(Options(seed=3), total_k=K).prepare(load_builtin("digits-mlp"))
    agg = ProjectionAggregator(Options(robust=False), total_k=K, dtype="float16")
    meta = agg.prepare(load_builtin("digits-mlp"))
    p = meta.projection
    assert p.dtype == "float16" and meta32.projection.dtype == "float32"
    update = np.random.default_rng(0).standard_normal(p.total_k) * 1e-2

    def reply(dtype: str):
        section = p.model_copy(update={"round": 1, "previous": recipe_digest(meta),
                                       "dtype": dtype, "update": encode_values(update, dtype)})
        child = meta.model_copy(update={"projection": section, "evidence": _evidence()})
        return ClientReply(child, recipe_digest(child), 0, {})

    half, full = reply("float16"), reply("float32")
    assert len(half.recipe.projection.update) < 0.55 * len(full.recipe.projection.update)
    # A reply in another type than the meta-recipe's is not aggregated.
    with pytest.raises(AggregationError):
        agg(meta, [full], AggregatorState())
    nxt, _ = agg(meta, [half], AggregatorState())
    coefficients = decode_values(nxt.projection.coefficients, "float16")
    assert np.array_equal(coefficients, update.astype(np.float16).astype(np.float32))
    # Replay from the recipe's bytes: the same model, bit for bit.
    again = parse_recipe(canonical_bytes(nxt))
    chain = {recipe_digest(meta): meta}
    a = state_dict_digest(shared_model(nxt, chain.__getitem__, ChainCache()).model)
    assert a == state_dict_digest(shared_model(again, chain.__getitem__, ChainCache()).model)
    assert a != state_dict_digest(shared_model(meta, None, ChainCache()).model)
    # A value beyond float16's range is refused, not sent as inf.
    with pytest.raises(ValueError, match="float16"):
        encode_values(np.array([1e6]), "float16")


def test_projection_basis_count_sketch_plans_a_sketch_for_every_tensor():
    from fedseed.federation.config import FederationConfig
    from fedseed.federation.from_config import aggregator_for

    recipe = load_builtin("digits-mlp")
    auto = aggregator_for(FederationConfig(mode="trajectory", aggregator="trajectory",
                                           trajectory_method="first-order"))
    sketch = aggregator_for(FederationConfig(mode="trajectory", aggregator="trajectory",
                                             trajectory_method="first-order",
                                             projection_basis="count-sketch"))

    assert {g.basis for g in auto.prepare(recipe).projection.groups} == {"gaussian"}
    groups = sketch.prepare(recipe).projection.groups
    assert {g.basis for g in groups} == {"count-sketch"}
    assert sum(g.k for g in groups) >= 1024 - len(groups)


def test_an_unknown_projection_basis_is_refused():
    from fedseed.errors import FedseedError
    from fedseed.federation.config import FederationConfig

    with pytest.raises(FedseedError, match="projection-basis must be auto or count-sketch"):
        FederationConfig(mode="trajectory", aggregator="trajectory",
                         trajectory_method="first-order", projection_basis="dct")
