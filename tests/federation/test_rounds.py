"""Round logic on both sides, without Flower: what is accepted, refused and counted."""

from __future__ import annotations

import base64
import json
import random

import pytest

from fedseed.errors import VerificationError
from fedseed.federation.client import load_identity, train_round, verify_meta
from fedseed.federation.server import judge_reply, plan_round, seal
from fedseed.meta import AggregatorState, Best
from fedseed.provenance.envelope import Envelope, sign_envelope
from fedseed.provenance.keys import generate_key, load_private_key
from fedseed.provenance.packed import read_envelope
from fedseed.provenance.trust import TrustStore
from fedseed.recipe import parse_recipe


def _reply(state, client, examples, tmp_path, assignment='{"optimizer.lr":0.01}'):
    return train_round(state.meta, assignment, examples, client, tmp_path / "w.safetensors")


def _judge(envelope, client, state, trust=TrustStore(), mode="tofu", seen=None, node=7):
    return judge_reply(node, envelope, client.pubkey_pem, {"optimizer.lr": 0.01}, state,
                       trust, mode, set() if seen is None else seen)


def test_plan_samples_fraction_with_a_minimum_and_draws_from_the_space(world):
    _, _, _, state = world

    plan = plan_round(state.meta.recipe, range(10), 0.3, 2, random.Random(0))
    small = plan_round(state.meta.recipe, range(10), 0.01, 2, random.Random(0))

    assert len(plan) == 3 and len(small) == 2
    assert len({node for node, _ in plan}) == 3
    assert len({a["optimizer.lr"] for _, a in plan}) == 1  # 3 clients share one configuration
    many = plan_round(state.meta.recipe, range(100), 0.5, 2, random.Random(0))
    assert len({a["optimizer.lr"] for _, a in many}) == 12
    lrs = [a["optimizer.lr"] for _, a in plan]
    assert all(1e-4 <= lr <= 3e-2 for lr in lrs)


def test_client_recipe_is_a_signed_child_of_the_meta_recipe(world, user_examples, tmp_path):
    _, _, client, state = world

    envelope, metrics = _reply(state, client, user_examples, tmp_path)
    recipe = parse_recipe(read_envelope(envelope).payload)

    assert recipe.lineage.parents == [state.meta.digest]
    assert recipe.lineage.producer == client.keyid
    assert recipe.optimizer.lr == 0.01
    assert metrics["num-examples"] == recipe.evidence.num_examples.train
    assert (tmp_path / "w.safetensors").stat().st_size > 30_000  # kept on the device
    assert len(envelope) < 8_000  # ...while the reply holds kilobytes


def test_server_accepts_a_fresh_signed_reply(world, user_examples, tmp_path):
    _, _, client, state = world
    envelope, _ = _reply(state, client, user_examples, tmp_path)

    judged = _judge(envelope, client, state)

    assert judged.reason is None and judged.keyid == client.keyid
    assert judged.reply.recipe.evidence is not None


def test_unsigned_reply_is_dropped(world, user_examples, tmp_path):
    _, _, client, state = world
    envelope, _ = _reply(state, client, user_examples, tmp_path)
    data = json.loads(read_envelope(envelope).to_json())  # replies travel packed
    data["signatures"] = []

    assert _judge(json.dumps(data).encode(), client, state).reason == "unsigned"


def test_tampered_reply_is_dropped(world, user_examples, tmp_path):
    _, _, client, state = world
    envelope, _ = _reply(state, client, user_examples, tmp_path)
    data = json.loads(read_envelope(envelope).to_json())
    payload = base64.b64decode(data["payload"]).replace(b'"lr":0.01', b'"lr":0.02')
    data["payload"] = base64.b64encode(payload).decode()

    assert _judge(json.dumps(data).encode(), client, state).reason == "bad signature"


def test_packed_reply_with_a_flipped_byte_is_dropped(world, user_examples, tmp_path):
    _, _, client, state = world
    envelope, _ = _reply(state, client, user_examples, tmp_path)
    assert envelope[:4] == b"FSP1"  # what the ClientApp sends
    for at in (len(envelope) - 1, len(envelope) // 2):  # a blob, the compressed header
        damaged = bytearray(envelope)
        damaged[at] ^= 0x01

        assert _judge(bytes(damaged), client, state).reason in {"bad signature", "malformed"}


def test_garbage_reply_is_dropped(world):
    _, _, client, state = world

    assert _judge(b"\x00not json", client, state).reason == "malformed"


def test_replayed_reply_from_an_earlier_round_is_dropped(world, user_examples, tmp_path):
    key, trust, client, state = world
    old, _ = _reply(state, client, user_examples, tmp_path)
    first = _judge(old, client, state)
    next_meta, agg = Best()(state.meta.recipe, [first.reply], AggregatorState())
    later = state.__class__(meta=seal(next_meta, key, trust), baseline=state.baseline,
                            aggregator=agg)

    assert _judge(old, client, later).reason == "replayed"


def test_same_client_recipe_twice_is_counted_once(world, user_examples, tmp_path):
    _, _, client, state = world
    envelope, _ = _reply(state, client, user_examples, tmp_path)
    seen: set[str] = set()

    first = _judge(envelope, client, state, seen=seen, node=1)
    second = _judge(envelope, client, state, seen=seen, node=2)

    assert first.reason is None and second.reason == "duplicate"


def test_store_mode_refuses_keys_not_trusted_for_the_client_role(world, user_examples,
                                                                 tmp_path):
    _, trust, client, state = world
    envelope, _ = _reply(state, client, user_examples, tmp_path)

    refused = _judge(envelope, client, state, trust=trust, mode="store")
    allowed_trust, _ = trust.add(client.pubkey_pem, "client", "node-a")
    allowed = _judge(envelope, client, state, trust=allowed_trust, mode="store")

    assert refused.reason == "untrusted"
    assert allowed.reason is None


def test_tofu_refuses_a_node_that_changes_key(world, user_examples, tmp_path):
    from dataclasses import replace

    _, _, client, state = world
    envelope, _ = _reply(state, client, user_examples, tmp_path)
    bound = replace(state, bindings={7: "0" * 64})

    assert _judge(envelope, client, bound).reason == "key changed"


def test_client_refuses_a_tampered_meta_recipe(world):
    _, trust, _, state = world
    data = json.loads(state.meta.envelope.to_json())
    payload = base64.b64decode(data["payload"]).replace(b'"max_steps":20', b'"max_steps":99')
    data["payload"] = base64.b64encode(payload).decode()

    with pytest.raises(VerificationError, match="does not verify"):
        verify_meta(json.dumps(data).encode(), trust)


def test_client_refuses_a_meta_recipe_not_signed_by_a_server_key(world):
    _, trust, _, state = world
    generate_key("impostor")
    impostor, kid = load_private_key("impostor")
    forged = sign_envelope(Envelope(payload=state.meta.envelope.payload), impostor, kid)

    with pytest.raises(VerificationError, match="unknown key"):
        verify_meta(forged.to_json(), trust)


def test_best_aggregator_keeps_the_best_configuration_and_links_every_reply(
        world, user_examples, tmp_path):
    _, _, client, state = world
    other = load_identity("node-b", create=True)
    replies = []
    for node, (who, lr) in enumerate([(client, 0.02), (other, 0.0002)]):
        envelope, _ = train_round(state.meta, json.dumps({"optimizer.lr": lr}), user_examples,
                                  who, None)
        judged = judge_reply(node, envelope, who.pubkey_pem, {"optimizer.lr": lr}, state,
                             TrustStore(), "tofu", set())
        replies.append(judged.reply)

    meta, agg = Best()(state.meta.recipe, replies, AggregatorState())

    best = max(replies, key=lambda r: r.recipe.evidence.final.val_metric)
    assert meta.optimizer.lr == best.assignment["optimizer.lr"]
    assert meta.lineage.parents == sorted(r.digest for r in replies)
    assert meta.lineage.round == agg.round == 1
    space = meta.search_space.params["optimizer.lr"]
    assert space.low <= meta.optimizer.lr <= space.high
    assert space.high / space.low < 3e-2 / 1e-4  # narrowed


def test_server_without_its_own_key_trusted_as_server_fails_before_round_one():
    from fedseed.errors import SignatureError
    from fedseed.federation.identity import server_identity

    generate_key("server")

    with pytest.raises(SignatureError, match="not trusted as server"):
        server_identity("server", create=False)
