"""The signed world the robustness benchmark mutates: real keys, real signatures.

Every key is a real Ed25519 key derived from a fixed name (so every input the
benchmark builds is the same from run to run); trust stores are the library's own;
meta-recipes are signed by the server key and wrapped in the library's
:class:`~fedseed.federation.server.ServerState`, and honest client replies are built
as :func:`fedseed.federation.client.train_round` builds them (the assigned
configuration as a child of the meta-recipe, its evidence, the client's key id as
producer, canonical bytes, packed). No training runs: a reply's evidence is a fixed
learning curve, which is all the server can see of a run anyway.

The :class:`Ledger` records every (payload type, payload) each key signed: the
oracles ask it whether bytes that verified were really signed by that key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from fedseed.federation.server import ServerState
from fedseed.meta.base import AggregatorState
from fedseed.provenance.envelope import PAYLOAD_TYPE, Envelope, sign_envelope
from fedseed.provenance.keys import key_id, load_public_pem, public_pem
from fedseed.provenance.trust import TrustStore
from fedseed.provenance.verify import VerifiedRecipe, verify_envelope
from fedseed.recipe import (
    CurvePoint,
    Evidence,
    ExampleCounts,
    FinalMetrics,
    Lineage,
    Recipe,
    apply_assignment,
    canonical_bytes,
    canonical_dict,
    child_recipe,
    digest_bytes,
    load_builtin,
    recipe_from_dict,
)
from fedseed.recipe.codec import parse_recipe
from fedseed.recipe.trajectory import encode_floats

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

#: alice, bob: trusted publishers; mallory: unknown; retired: trusted, then revoked;
#: server: the federation server; old-server: a revoked server key; client: a device;
#: attacker: another device, unknown to the server.
KEY_NAMES = ("alice", "bob", "mallory", "retired", "server", "old-server", "client",
             "attacker")
CREATED = datetime(2026, 1, 1, tzinfo=timezone.utc)
#: Assignments a server deals; the empty one is a round without a search.
ASSIGNMENTS: tuple[dict[str, Any], ...] = (
    {"optimizer.lr": 0.01}, {"optimizer.lr": 0.01, "budget.batch_size": 16}, {})
#: Node ids the judge sees: 7 is bound to the client's key, 8 to nobody, 9 to the attacker's.
NODES = (7, 8, 9)


def fixed_key(name: str) -> Ed25519PrivateKey:
    """A real Ed25519 key, the same on every run (seed: SHA-256 of its name)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    seed = hashlib.sha256(b"fedseed bench robustness key " + name.encode()).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


@dataclass
class Ledger:
    """Every (payload type, payload) each key id signed, as the benchmark signed it."""

    signed: dict[str, set[tuple[str, bytes]]] = field(default_factory=dict)
    by_digest: dict[str, bytes] = field(default_factory=dict)

    def sign(self, envelope: Envelope, key: Ed25519PrivateKey) -> Envelope:
        """``envelope`` with one more signature by ``key``, recorded."""
        kid = key_id(key.public_key())
        self.signed.setdefault(kid, set()).add((envelope.payload_type, envelope.payload))
        self.by_digest[digest_bytes(envelope.payload)] = envelope.payload
        return sign_envelope(envelope, key, kid)

    def has(self, kid: str, payload_type: str, payload: bytes) -> bool:
        """Whether key ``kid`` signed ``payload`` as ``payload_type``."""
        return (payload_type, payload) in self.signed.get(kid, set())


@dataclass(frozen=True)
class Round:
    """A round in progress on the server, and the replies it should accept."""

    name: str
    state: ServerState
    #: assignment index -> signer name -> the honest reply (an envelope) for it
    fresh: Mapping[int, Mapping[str, Envelope]]


@dataclass
class World:
    """Keys, trust stores, signed recipes and rounds; see the module docstring."""

    keys: dict[str, Ed25519PrivateKey]
    kids: dict[str, str]
    pems: dict[str, bytes]
    ledger: Ledger
    registry_trust: TrustStore  # what a registry accepts: publishers
    device_trust: TrustStore  # what a device accepts: the server's meta-recipes
    server_trust: TrustStore  # what a server accepts in ``store`` mode: client keys
    recipes: tuple[bytes, ...]  # canonical bytes of the base recipes
    published: tuple[Envelope, ...]  # the base recipes signed by alice (one also by bob)
    metas: tuple[Envelope, ...]  # meta-recipes signed by the server
    rounds: tuple[Round, ...]
    replay: Envelope  # a round-0 reply, accepted in round 0

    def sign(self, payload: bytes, signer: str, payload_type: str = PAYLOAD_TYPE) -> Envelope:
        """A fresh envelope of ``payload`` signed by ``signer`` (recorded)."""
        return self.ledger.sign(Envelope(payload=payload, payload_type=payload_type),
                                self.keys[signer])


def _trust(pems: dict[str, bytes], entries: list[tuple[str, str]],
           revoked: tuple[str, ...] = ()) -> TrustStore:
    store = TrustStore()
    for name, role in entries:
        store, _ = store.add(pems[name], role, name)
    for name in revoked:
        store, _ = store.revoke(key_id(_public(pems[name])))
    return store


def _public(pem: bytes) -> Any:
    return load_public_pem(pem)


def _trajectory_recipe() -> Recipe:
    """digits-mlp as a seed-trajectory meta-recipe with 64 coefficients."""
    import numpy as np

    data = canonical_dict(load_builtin("digits-mlp"))
    coefficients = (np.arange(64, dtype=np.float32) - 32) * np.float32(1e-4)
    data["trajectory"] = {"generator_version": "2.13", "pool_size": 64, "seeds_per_step": 16,
                          "coefficients": encode_floats(coefficients)}
    data["search_space"] = None
    return recipe_from_dict({k: v for k, v in data.items() if v is not None})


def _evidence(variant: int) -> Evidence:
    metric = 0.6 + 0.01 * variant
    return Evidence(
        curve=[CurvePoint(step=10, train_loss=1.5, val_loss=1.4, val_metric=metric - 0.05),
               CurvePoint(step=20, train_loss=1.2, val_loss=1.1, val_metric=metric)],
        final=FinalMetrics(val_loss=1.1, val_metric=metric, test_loss=1.2,
                           test_metric=metric - 0.01),
        num_examples=ExampleCounts(train=100, validation=20, test=20),
        steps=20, best_step=20, stopped_early=False, wall_seconds=0.5)


def honest_reply(world_keys: dict[str, Ed25519PrivateKey], ledger: Ledger,
                 meta: VerifiedRecipe, assignment: dict[str, Any], signer: str,
                 variant: int = 0) -> Envelope:
    """The reply an honest device signs for ``meta`` and ``assignment``."""
    key = world_keys[signer]
    ran = apply_assignment(meta.recipe, assignment) if assignment else meta.recipe
    child = child_recipe(meta.recipe, ran, _evidence(variant), method="client",
                         producer=key_id(key.public_key()), created=CREATED)
    return ledger.sign(Envelope(payload=canonical_bytes(child)), key)


def _seal(recipe: Recipe, lineage: Lineage, world: dict[str, Any]) -> VerifiedRecipe:
    """What :func:`fedseed.federation.server.seal` does, with a fixed clock."""
    keys, ledger, trust = world["keys"], world["ledger"], world["device_trust"]
    lineage = lineage.model_copy(update={"producer": key_id(keys["server"].public_key()),
                                         "created": CREATED})
    envelope = ledger.sign(Envelope(payload=canonical_bytes(
        recipe.model_copy(update={"lineage": lineage}))), keys["server"])
    return verify_envelope(envelope, trust, role="server", source="meta-recipe")


def build_world() -> World:
    """Build the signed world (a second or so: a few dozen signatures)."""
    keys = {name: fixed_key(name) for name in KEY_NAMES}
    kids = {name: key_id(key.public_key()) for name, key in keys.items()}
    pems = {name: public_pem(key.public_key()) for name, key in keys.items()}
    ledger = Ledger()
    registry_trust = _trust(pems, [("alice", "publisher"), ("bob", "publisher"),
                                   ("retired", "publisher"), ("client", "client")],
                            revoked=("retired",))
    device_trust = _trust(pems, [("server", "server"), ("old-server", "server"),
                                 ("alice", "publisher")], revoked=("old-server",))
    server_trust = _trust(pems, [("client", "client"), ("retired", "client"),
                                 ("server", "server")], revoked=("retired",))

    base = [load_builtin("digits-mlp"), load_builtin("text-bert-tiny"), _trajectory_recipe()]
    parts: dict[str, Any] = {"keys": keys, "ledger": ledger, "device_trust": device_trust}
    small = apply_assignment(load_builtin("digits-mlp"), {"budget.max_steps": 20,
                                                          "budget.eval_every": 10})
    meta0 = _seal(small, Lineage(parents=[digest_bytes(canonical_bytes(small))], round=0,
                                 method="init"), parts)
    meta1 = _seal(apply_assignment(meta0.recipe, {"optimizer.lr": 0.003}),
                  Lineage(parents=[meta0.digest], round=1, method="best"), parts)
    meta_t = _seal(base[2], Lineage(parents=[digest_bytes(canonical_bytes(base[2]))], round=0,
                                    method="init"), parts)
    replay = honest_reply(keys, ledger, meta0, ASSIGNMENTS[0], "client", variant=0)
    base.append(read_child(replay))

    recipes = tuple(canonical_bytes(r) for r in base)
    published = [ledger.sign(Envelope(payload=raw), keys["alice"]) for raw in recipes]
    published[0] = ledger.sign(published[0], keys["bob"])  # one co-signed envelope

    bindings = {7: kids["client"], 9: kids["attacker"]}
    rounds = []
    # A: the server moved on to meta1. B: round 0 got too few replies, so the server
    # kept meta0 and only advanced its round (a round-0 reply is then a replay by
    # digest alone, since it still names the current meta-recipe as its parent).
    for name, meta in (("next-meta", meta1), ("kept-meta", meta0)):
        state = ServerState(meta=meta, baseline=meta0, aggregator=AggregatorState(round=1),
                            bindings=bindings,
                            accepted=frozenset({digest_bytes(replay.payload)}))
        fresh = {i: {signer: honest_reply(keys, ledger, meta, a, signer, variant=1 + i)
                     for signer in ("client", "attacker")}
                 for i, a in enumerate(ASSIGNMENTS)}
        rounds.append(Round(name, state, fresh))
    return World(keys=keys, kids=kids, pems=pems, ledger=ledger, registry_trust=registry_trust,
                 device_trust=device_trust, server_trust=server_trust, recipes=recipes,
                 published=tuple(published),
                 metas=(meta0.envelope, meta1.envelope, meta_t.envelope),
                 rounds=tuple(rounds), replay=replay)


def read_child(envelope: Envelope) -> Recipe:
    """The recipe inside an envelope the benchmark signed itself."""
    return parse_recipe(envelope.payload)

