"""Feeding a mutated input to each consumer and judging what it did.

A probe calls one library entry point on a :class:`~._robust_cases.Case` and returns
an :class:`Outcome`: accepted (rightly or wrongly, by the oracles of
:mod:`._oracles`), refused (rightly, or wrongly when the oracle says it must be
accepted), or crashed (anything but a :class:`~fedseed.errors.FedseedError`; for
the judge, whose contract is to return a verdict on any bytes, any exception).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fedseed.bench._oracles import (
    Refuse,
    decode_envelope,
    reply_should_pass,
    signature_by,
    unearned_signature,
    unfaithful_recipe,
)
from fedseed.bench._robust_cases import Case, Reply
from fedseed.bench._signed_world import ASSIGNMENTS, World
from fedseed.errors import FedseedError
from fedseed.federation.client import verify_meta
from fedseed.federation.server import judge_reply
from fedseed.provenance.envelope import PAYLOAD_TYPE
from fedseed.provenance.keys import key_id
from fedseed.provenance.packed import read_envelope
from fedseed.provenance.verify import verify_envelope
from fedseed.recipe import apply_assignment, canonical_dict
from fedseed.recipe.codec import canonical_bytes, digest_bytes, parse_recipe


@dataclass(frozen=True)
class Outcome:
    """What a consumer did with one input, as the oracle judges it."""

    verdict: str  # accepted | wrongly-accepted | refused | wrongly-refused | crashed
    detail: str = ""


ACCEPTED, WRONGLY_ACCEPTED = "accepted", "wrongly-accepted"
REFUSED, WRONGLY_REFUSED, CRASHED = "refused", "wrongly-refused", "crashed"


def _crash(e: BaseException) -> Outcome:
    return Outcome(CRASHED, f"{type(e).__name__}: {str(e)[:160]}")


def _accepted(why_wrong: str | None) -> Outcome:
    return Outcome(WRONGLY_ACCEPTED, why_wrong) if why_wrong else Outcome(ACCEPTED)


def _refused(must_accept: bool, e: BaseException | None = None) -> Outcome:
    detail = e.diagnostics()[:160] if isinstance(e, FedseedError) else ""
    return Outcome(WRONGLY_REFUSED if must_accept else REFUSED, detail)


def read(case: Case, world: World) -> Outcome:
    """``read_envelope``: accepted only as the format oracle decodes it."""
    try:
        expected = decode_envelope(case.data)
    except Refuse as e:
        expected, why = None, str(e)
    try:
        envelope = read_envelope(case.data)
    except FedseedError as e:
        return _refused(expected is not None or case.legit, e)
    except Exception as e:  # counted and listed in the report, not swallowed
        return _crash(e)
    if expected is None:
        return Outcome(WRONGLY_ACCEPTED, f"the format oracle refuses it: {why}")
    got = (envelope.payload, envelope.payload_type,
           tuple((s.keyid, s.sig) for s in envelope.signatures))
    return _accepted(None if got == expected else "read differently from the format oracle")


def verify(case: Case, world: World) -> Outcome:
    """``verify_envelope`` (publisher role): accepted only over bytes a trusted,
    unrevoked publisher key signed, as a faithful recipe."""
    try:
        verified = verify_envelope(read_envelope(case.data), world.registry_trust,
                                   role="publisher")
    except FedseedError as e:
        return _refused(case.legit, e)
    except Exception as e:
        return _crash(e)
    envelope = verified.envelope
    allowed = frozenset({world.kids["alice"], world.kids["bob"]})
    why = unearned_signature(envelope.payload, envelope.payload_type, verified.keyids,
                             allowed, world.ledger) \
        or unfaithful_recipe(envelope.payload, verified.recipe) \
        or (None if verified.digest == digest_bytes(envelope.payload) else "wrong digest")
    return _accepted(why)


def parse(case: Case, world: World) -> Outcome:
    """``parse_recipe``: accepted only as a faithful reading of strict JSON."""
    try:
        recipe = parse_recipe(case.data)
    except FedseedError as e:
        return _refused(case.legit, e)
    except Exception as e:
        return _crash(e)
    return _accepted(unfaithful_recipe(case.data, recipe))


def check_meta(case: Case, world: World) -> Outcome:
    """``verify_meta``: accepted only over bytes the (unrevoked) server key signed."""
    try:
        verified = verify_meta(case.data, world.device_trust)  # type: ignore[arg-type]
    except FedseedError as e:
        return _refused(case.legit, e)
    except Exception as e:
        return _crash(e)
    envelope = verified.envelope
    why = unearned_signature(envelope.payload, envelope.payload_type, verified.keyids,
                             frozenset({world.kids["server"]}), world.ledger) \
        or unfaithful_recipe(envelope.payload, verified.recipe)
    return _accepted(why)


def judge(case: Case, world: World) -> Outcome:
    """``judge_reply``: accepted only if it is exactly a fresh honest reply."""
    reply = case.reply
    assert reply is not None
    round_ = world.rounds[reply.round]
    state = round_.state
    assignment = ASSIGNMENTS[reply.assignment]
    try:
        judged = judge_reply(reply.node, case.data, reply.pubkey,  # type: ignore[arg-type]
                             assignment, state, world.server_trust, reply.mode,
                             set(reply.seen))
    except Exception as e:  # FedseedError too: the judge must not raise
        return _crash(e)
    known = state.accepted | reply.seen
    expected = _expected(world, reply.round, reply.assignment)
    if judged.reply is None:
        return _refused(_must_pass(case, world, expected, known))
    payload = world.ledger.by_digest.get(judged.reply.digest)
    kid = judged.keyid or ""
    if payload is None or not world.ledger.has(kid, PAYLOAD_TYPE,
                                               payload):
        return Outcome(WRONGLY_ACCEPTED, f"key {kid[:16]} never signed these bytes")
    why = _signer_admissible(world, reply, kid, state.bindings.get(reply.node)) \
        or reply_should_pass(payload, kid, state.meta.digest, expected, known) \
        or unfaithful_recipe(payload, judged.reply.recipe) \
        or (None if dict(judged.reply.assignment) == assignment
            and judged.node_id == reply.node else "wrong node or assignment recorded")
    return _accepted(why)


def _expected(world: World, round_index: int, assignment_index: int) -> dict:
    meta = world.rounds[round_index].state.meta.recipe
    assignment = ASSIGNMENTS[assignment_index]
    ran = apply_assignment(meta, assignment) if assignment else meta
    return {k: v for k, v in canonical_dict(ran).items()
            if k not in ("search_space", "portfolio", "evidence", "lineage")}


def _signer_admissible(world: World, reply: Reply, kid: str, bound: str | None) -> str | None:
    """Whether the judge may take ``kid`` as this node's key (tofu or store)."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    entry = world.server_trust.get(kid)
    if entry is not None and entry.revoked is not None:
        return "a revoked key"
    if reply.mode == "store":
        ok = entry is not None and "client" in entry.roles
        return None if ok else "store mode, key not trusted as client"
    try:
        presented = key_id(load_pem_public_key(reply.pubkey))  # type: ignore[arg-type]
    except (ValueError, TypeError, UnicodeError):
        return "tofu, no readable public key presented"
    if presented != kid:
        return "tofu, signer is not the presented key"
    return None if bound in (None, kid) else "tofu, node is bound to another key"


def _must_pass(case: Case, world: World, expected: dict, known: frozenset[str]) -> bool:
    """Whether the oracle says the judge should have accepted a refused reply."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    reply = case.reply
    assert reply is not None
    try:
        decoded = decode_envelope(case.data)
    except Refuse:
        return False
    payload, kind, signatures = decoded
    state = world.rounds[reply.round].state
    candidates: list[tuple[str, Any]] = []
    if reply.mode == "tofu":
        try:
            presented: Any = load_pem_public_key(reply.pubkey)
            candidates = [(key_id(presented), presented)]
        except (ValueError, TypeError, UnicodeError):
            return False
    else:
        keys = world.server_trust.public_keys("client")
        candidates = [(k, keys[k]) for k, _ in signatures if k in keys][:1]
    for kid, public in candidates:
        if kind != PAYLOAD_TYPE or not signature_by(public, decoded, kid):
            continue
        if _signer_admissible(world, reply, kid, state.bindings.get(reply.node)):
            continue
        if reply_should_pass(payload, kid, state.meta.digest, expected, known):
            continue
        try:
            return canonical_bytes(parse_recipe(payload)) == payload
        except FedseedError:
            return False
    return False


#: Which consumers read which kind of input.
PROBES: dict[str, tuple[tuple[str, Callable[[Case, World], Outcome]], ...]] = {
    "envelope-dsse": (("read_envelope", read), ("verify_envelope", verify)),
    "envelope-packed": (("read_envelope", read), ("verify_envelope", verify)),
    "recipe": (("parse_recipe", parse),),
    "client-reply": (("judge_reply", judge),),
    "meta-recipe": (("verify_meta", check_meta),),
}
