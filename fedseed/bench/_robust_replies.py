"""Client replies for the robustness benchmark: a round in progress, and what a
device or an attacker can send to it.

Each reply comes with what the judge is given besides its bytes (:class:`Reply`):
the round, the dealt assignment, the node id, the trust mode, the public key the
node presents and the digests already seen this round. Then the reply is sent as is
(``scenario``), mutated like any envelope, or has its signed claims edited and
signed again (``claims``).
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from fedseed.bench._mutations import COMPACT, byte_mutations, dumps, styles
from fedseed.bench._robust_cases import Case, Reply, dsse_mutation, packed_mutation
from fedseed.bench._signed_world import ASSIGNMENTS, NODES, World
from fedseed.provenance.envelope import Envelope
from fedseed.provenance.packed import pack
from fedseed.recipe.codec import digest_bytes

_REPLY_SIGNERS = ("client", "attacker", "keep")


@st.composite
def _pubkey(draw: st.DrawFn, world: World, signer: str) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(["signer", "signer", "client", "attacker", "mutated",
                                 "garbage-after", "crlf"]))
    pem = world.pems[signer]
    if kind in ("client", "attacker"):
        return f"pubkey={kind}", world.pems[kind]
    if kind == "mutated":
        label, out = draw(byte_mutations(pem))
        return f"pubkey {label}", out
    if kind == "garbage-after":
        return kind, pem + draw(st.sampled_from([b"\xff", b"junk", b"\n" + pem, b"\x00"]))
    if kind == "crlf":
        return kind, pem.replace(b"\n", b"\r\n")
    return "pubkey=signer", pem


def client_replies(world: World) -> st.SearchStrategy[Case]:
    """Replies to a round in progress: fresh, replayed from round 0, for another
    assignment or round, by another key; then mutated like any envelope."""

    @st.composite
    def make(draw: st.DrawFn) -> Case:
        r = draw(st.integers(0, len(world.rounds) - 1))
        a = draw(st.integers(0, len(ASSIGNMENTS) - 1))
        source = draw(st.sampled_from(["fresh", "fresh", "fresh", "attacker", "replay",
                                       "other-assignment", "other-round"]))
        signer = "attacker" if source == "attacker" else "client"
        if source == "replay":
            envelope = world.replay
        elif source == "other-assignment":
            envelope = world.rounds[r].fresh[(a + 1) % len(ASSIGNMENTS)]["client"]
        elif source == "other-round":
            envelope = world.rounds[1 - r].fresh[a]["client"]
        else:
            envelope = world.rounds[r].fresh[a][signer]
        key_label, pubkey = draw(_pubkey(world, signer))
        seen: frozenset[str] = frozenset()
        if draw(st.integers(0, 4)) == 0:  # another node already sent this very reply
            seen = frozenset({digest_bytes(envelope.payload)})
        reply = Reply(round=r, assignment=a, node=draw(st.sampled_from(NODES)),
                      mode=draw(st.sampled_from(["tofu", "store"])), pubkey=pubkey, seen=seen)
        context = f"{world.rounds[r].name} a{a} {source} node {reply.node} {reply.mode} " \
                  f"{key_label}{' seen' if seen else ''}"
        how = draw(st.sampled_from(["as-sent", "packed", "dsse", "claims", "claims"]))
        if how == "as-sent":
            return Case("client-reply", "scenario", context, pack(envelope), reply=reply)
        if how == "claims":
            label, data = draw(_claims(world, envelope, r))
            return Case("client-reply", "claims", f"{context}; {label}", data, reply=reply)
        if how == "packed":
            family, label, data, _ = draw(packed_mutation(world, envelope, _REPLY_SIGNERS))
        else:
            family, label, data, _ = draw(dsse_mutation(world, envelope, _REPLY_SIGNERS))
        return Case("client-reply", family, f"{context}; {how} {label}", data, reply=reply)

    return make()


@st.composite
def _claims(draw: st.DrawFn, world: World, envelope: Envelope, r: int) -> tuple[str, bytes]:
    """A reply whose signed claims are edited and signed again (by the device or the
    attacker): another parent, round, producer, budget, learning rate, no evidence,
    better metrics. Some of these a device may claim; the oracle says which."""
    data = json.loads(envelope.payload)
    metas = [world.rounds[i].state.meta.digest for i in range(len(world.rounds))]
    lineage, evidence = data["lineage"], data["evidence"]
    edits: dict[str, dict[str, Any]] = {
        "parent=other-round": {"lineage": {**lineage, "parents": [metas[1 - r]]}},
        "parents=[]": {"lineage": {**lineage, "parents": []}},
        "parents=twice": {"lineage": {**lineage, "parents": lineage["parents"] * 2}},
        "round=0": {"lineage": {**lineage, "round": 0}},
        "round=5": {"lineage": {**lineage, "round": 5}},
        "producer=attacker": {"lineage": {**lineage, "producer": world.kids["attacker"]}},
        "producer=client": {"lineage": {**lineage, "producer": world.kids["client"]}},
        "producer=none": {"lineage": {k: v for k, v in lineage.items() if k != "producer"}},
        "no-evidence": {"evidence": None},
        "max_steps=400": {"budget": {**data["budget"], "max_steps": 400}},
        "lr=0.003": {"optimizer": {**data["optimizer"], "lr": 0.003}},
        "batch_size=64": {"budget": {**data["budget"], "batch_size": 64}},
        "name=other": {"name": "other"},
        "search-space-kept": {"search_space": canonical_space(world)},
        "better-metric": {"evidence": {**evidence, "final": {**evidence["final"],
                                                              "val_metric": 0.99}}},
        "more-steps": {"evidence": {**evidence, "steps": 10**6}},
    }
    names = draw(st.lists(st.sampled_from(sorted(edits)), min_size=1, max_size=2,
                          unique=True))
    for name in names:
        data = {**data, **edits[name]}
    data = {k: v for k, v in data.items() if v is not None}
    style = draw(st.sampled_from([COMPACT, COMPACT, COMPACT]) | styles())
    signer = draw(st.sampled_from(["client", "client", "attacker"]))
    signed = world.sign(dumps(data, style), signer)
    packed = draw(st.booleans())
    return (f"claims {'+'.join(names)} signed by {signer} "
            f"{'packed' if packed else 'dsse'} {style.label}",
            pack(signed) if packed else signed.to_json())


def canonical_space(world: World) -> Any:
    """The search space of the round-0 meta-recipe, as JSON."""
    return json.loads(world.rounds[1].state.meta.envelope.payload)["search_space"]
