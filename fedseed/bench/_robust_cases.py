"""The mutated inputs of the robustness benchmark, one strategy per input kind
(client replies, which need a round in progress, are in :mod:`._robust_replies`).

A :class:`Case` is one input and how it was made (its family and label). ``legit``
marks re-encodings that keep the signed payload bytes and signatures (DSSE JSON
whitespace, key order or escapes, the other base64 alphabet, a re-compressed packed
header): those must be accepted. For every other case the oracles decide.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from fedseed.bench._mutations import (
    B64_LEGIT,
    COMPACT,
    Pairs,
    Raw,
    b64_variant,
    byte_mutations,
    dumps,
    styles,
    tree_mutation,
)
from fedseed.bench._signed_world import World
from fedseed.provenance._packed_dictionary import DICTIONARY
from fedseed.provenance.envelope import MAX_SIGNATURES, PAYLOAD_TYPE, Envelope
from fedseed.provenance.packed import MAGIC, _varint, pack  # the format's own encoder

KINDS = ("envelope-dsse", "envelope-packed", "recipe", "client-reply", "meta-recipe")


@dataclass(frozen=True)
class Reply:
    """What else the judge is given with a reply."""

    round: int
    assignment: int
    node: int
    mode: str
    pubkey: bytes
    seen: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Case:
    """One mutated input."""

    kind: str
    family: str
    label: str
    data: bytes | str
    legit: bool = False
    reply: Reply | None = field(default=None, compare=False)


# --- payloads (recipes) ------------------------------------------------------------


@st.composite
def recipe_mutation(draw: st.DrawFn, raw: bytes) -> tuple[str, str, bytes, bool]:
    """(family, label, bytes, legit) of one mutation of recipe JSON ``raw``."""
    family = draw(st.sampled_from(["reencode", "bytes", "tree", "tree", "tree2"]))
    if family == "reencode":
        style = draw(styles())
        return family, f"reencode:{style.label}", dumps(json.loads(raw), style), True
    if family == "bytes":
        label, data = draw(byte_mutations(raw))
        return family, label, data, False
    tree = json.loads(raw)
    labels = []
    for _ in range(1 if family == "tree" else 2):
        if isinstance(tree, (Raw, Pairs)):
            break
        label, tree = draw(tree_mutation(tree))
        labels.append(label)
    style = draw(st.just(COMPACT) | styles())
    return "tree", " + ".join(labels), dumps(tree, style), False


def recipes(world: World) -> st.SearchStrategy[Case]:
    """Recipe JSON: the canonical bytes of a base recipe, mutated (or not: control)."""

    @st.composite
    def make(draw: st.DrawFn) -> Case:
        raw = draw(st.sampled_from(world.recipes))
        if draw(st.integers(0, 19)) == 0:
            return _maybe_text(draw, Case("recipe", "control", "unchanged", raw, legit=True))
        family, label, data, legit = draw(recipe_mutation(raw))
        return _maybe_text(draw, Case("recipe", family, label, data, legit=legit))

    return make()


def _maybe_text(draw: st.DrawFn, case: Case) -> Case:
    """Now and then hand the reader text instead of bytes (the API takes both)."""
    if not isinstance(case.data, bytes) or draw(st.integers(0, 9)):
        return case
    text = case.data.decode("utf-8", "surrogateescape")
    # Bytes that are not UTF-8 become lone surrogates: such text has no UTF-8 form.
    legit = case.legit and not any("\udc80" <= c <= "\udcff" for c in text)
    return Case(case.kind, case.family, case.label + " (as text)", text, legit, case.reply)


# --- DSSE JSON ---------------------------------------------------------------------


def _envelope_ops(world: World, envelope: Envelope) -> st.SearchStrategy[tuple[str, Any]]:
    """Envelope-specific structural mutations of ``envelope``'s DSSE dict."""
    obj = envelope.to_dict()
    others = [e for e in (*world.published, *world.metas) if e.payload != envelope.payload]
    other = others[0].to_dict()
    sig = obj["signatures"][0]
    ops: dict[str, Any] = {
        "no-signatures": {**obj, "signatures": []},
        "signature-twice": {**obj, "signatures": [sig, sig]},
        "too-many-signatures": {**obj, "signatures": [sig] * (MAX_SIGNATURES + 1)},
        "keyid-of-another-key": {**obj, "signatures": [
            {**sig, "keyid": world.kids["bob" if sig["keyid"] != world.kids["bob"]
                                        else "alice"]}]},
        "keyid-empty": {**obj, "signatures": [{**sig, "keyid": ""}]},
        "keyid-missing": {**obj, "signatures": [{"sig": sig["sig"]}]},
        "signature-of-another-envelope": {**obj, "signatures": other["signatures"]},
        "payload-of-another-envelope": {**obj, "payload": other["payload"]},
        "payload-twice-other-first": Pairs((("payload", other["payload"]),
                                            ("payload", obj["payload"]),
                                            ("payloadType", obj["payloadType"]),
                                            ("signatures", obj["signatures"]))),
        "payload-twice-other-last": Pairs((("payload", obj["payload"]),
                                           ("payload", other["payload"]),
                                           ("payloadType", obj["payloadType"]),
                                           ("signatures", obj["signatures"]))),
        "payload-type-twice": Pairs((("payload", obj["payload"]),
                                     ("payloadType", "text/plain"),
                                     ("payloadType", obj["payloadType"]),
                                     ("signatures", obj["signatures"]))),
        "swap-payload-and-type": {**obj, "payload": obj["payloadType"],
                                  "payloadType": obj["payload"]},
        "extra-field": {**obj, "x-note": "hello"},
    }
    return st.sampled_from(sorted(ops)).map(lambda name: (name, ops[name]))


_SIGNERS = ("alice", "bob", "mallory", "retired", "client", "server", "keep", "keep+alice")
_TYPES = (PAYLOAD_TYPE, PAYLOAD_TYPE, PAYLOAD_TYPE, PAYLOAD_TYPE.upper(), PAYLOAD_TYPE + " ",
          "application/vnd.in-toto+json", "", "\ud800")


@st.composite
def resigned(draw: st.DrawFn, world: World, envelope: Envelope,
             signers: tuple[str, ...] = _SIGNERS) -> tuple[str, Envelope]:
    """A mutated payload (or type), signed by a drawn key or keeping the old signatures."""
    family, label, payload, _ = draw(recipe_mutation(envelope.payload))
    kind = draw(st.sampled_from(_TYPES))
    signer = draw(st.sampled_from(signers))
    kept = envelope.signatures
    if signer == "keep" or kind == "\ud800":  # a type PAE cannot encode is never signed
        result = Envelope(payload=payload, payload_type=kind, signatures=kept)
    elif signer == "keep+alice":  # the old signatures, and alice co-signs the new bytes
        kept = tuple(s for s in kept if s.keyid != world.kids["alice"])
        result = world.ledger.sign(Envelope(payload, kind, kept), world.keys["alice"])
    else:
        result = world.sign(payload, signer, kind)
    return f"resign[{signer}, type={kind[:12]!r}] {family}: {label}", result


@st.composite
def dsse_mutation(draw: st.DrawFn, world: World, envelope: Envelope,
                  signers: tuple[str, ...] = _SIGNERS) -> tuple[str, str, bytes, bool]:
    """(family, label, bytes, legit) of one mutation of ``envelope`` as DSSE JSON."""
    family = draw(st.sampled_from(["reencode", "b64", "bytes", "tree", "envelope", "resign",
                                   "resign"]))
    obj = envelope.to_dict()
    if family == "reencode":
        style = draw(styles())
        return family, f"reencode:{style.label}", dumps(obj, style), True
    if family == "b64":
        where = draw(st.sampled_from(["payload"] + [f"sig{i}" for i in
                                                    range(len(envelope.signatures))]))
        raw = envelope.payload if where == "payload" else \
            envelope.signatures[int(where[3:])].sig
        label, text = draw(b64_variant(raw))
        if where == "payload":
            obj = {**obj, "payload": text}
        else:
            i = int(where[3:])
            obj = {**obj, "signatures": [{**s, "sig": text} if j == i else s
                                         for j, s in enumerate(obj["signatures"])]}
        return family, f"{label} in {where}", dumps(obj), label[4:] in B64_LEGIT
    if family == "bytes":
        label, data = draw(byte_mutations(envelope.to_json()))
        return family, label, data, False
    if family == "tree":
        label, tree = draw(tree_mutation(obj))
        return family, label, dumps(tree, draw(st.just(COMPACT) | styles())), False
    if family == "envelope":
        label, tree = draw(_envelope_ops(world, envelope))
        return family, label, dumps(tree), False
    label, result = draw(resigned(world, envelope, signers))
    return "resign", label, result.to_json(), False


def dsse_envelopes(world: World) -> st.SearchStrategy[Case]:
    """Publisher envelopes as DSSE JSON, mutated (or not: control)."""

    @st.composite
    def make(draw: st.DrawFn) -> Case:
        envelope = draw(st.sampled_from(world.published))
        if draw(st.integers(0, 19)) == 0:
            return Case("envelope-dsse", "control", "unchanged", envelope.to_json(), True)
        family, label, data, legit = draw(dsse_mutation(world, envelope))
        return _maybe_text(draw, Case("envelope-dsse", family, label, data, legit))

    return make()


# --- packed ------------------------------------------------------------------------


def _split(packed: bytes) -> tuple[bytes, bytes]:
    """(inflated header JSON, blobs) of a packed envelope made by :func:`pack`."""
    size, at, shift = 0, 4, 0
    while True:
        byte = packed[at]
        size |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if not byte & 0x80:
            break
    header = zlib.decompressobj(-15, zdict=DICTIONARY).decompress(packed[at:at + size])
    return header, packed[at + size:]


def _deflate(text: bytes, level: int = 9, with_dictionary: bool = True,
             strategy: int = zlib.Z_DEFAULT_STRATEGY) -> bytes:
    kwargs: dict[str, Any] = {"zdict": DICTIONARY} if with_dictionary else {}
    deflate = zlib.compressobj(level, zlib.DEFLATED, -15, 9, strategy, **kwargs)
    return deflate.compress(text) + deflate.flush()


def _assemble(compressed: bytes, blobs: bytes, varint: bytes | None = None) -> bytes:
    return MAGIC + (varint if varint is not None else _varint(len(compressed))) + \
        compressed + blobs


_STRATEGIES = (zlib.Z_DEFAULT_STRATEGY, zlib.Z_FILTERED, zlib.Z_HUFFMAN_ONLY, zlib.Z_RLE,
               zlib.Z_FIXED)


@st.composite
def packed_mutation(draw: st.DrawFn, world: World, envelope: Envelope,
                    signers: tuple[str, ...] = _SIGNERS) -> tuple[str, str, bytes, bool]:
    """(family, label, bytes, legit) of one mutation of ``envelope`` in packed form."""
    data = pack(envelope)
    header, blobs = _split(data)
    family = draw(st.sampled_from(["bytes", "bytes", "header", "header-reencode", "recompress",
                                   "framing", "resign", "resign"]))
    if family == "bytes":
        label, out = draw(byte_mutations(data))
        return family, label, out, False
    if family == "recompress":
        level = draw(st.integers(0, 9))
        zdict = draw(st.booleans())
        strategy = draw(st.sampled_from(_STRATEGIES))
        label = f"recompress:level={level},dictionary={zdict},strategy={strategy}"
        return family, label, _assemble(_deflate(header, level, zdict, strategy), blobs), True
    if family == "header-reencode":
        style = draw(styles(orders=("given",)))
        text = dumps(json.loads(header), style)
        return family, f"header:{style.label}", _assemble(_deflate(text), blobs), True
    if family == "header":
        label, tree = draw(tree_mutation(json.loads(header)))
        return family, "header " + label, _assemble(_deflate(dumps(tree)), blobs), False
    if family == "framing":
        compressed = _deflate(header)
        n = len(compressed)
        ops = {
            "varint-not-minimal": _assemble(compressed, blobs, _varint(n)[:-1] + bytes(
                [_varint(n)[-1] | 0x80, 0])),
            "varint-one-short": _assemble(compressed, blobs, _varint(n - 1)),
            "varint-one-long": _assemble(compressed, blobs, _varint(n + 1)),
            "varint-huge": _assemble(compressed, blobs, b"\xff\xff\xff\xff\x0f"),
            "trailing-byte": data + b"\x00",
            "blobs-truncated": _assemble(compressed, blobs[:-1]),
            "blobs-rotated": _assemble(compressed, blobs[1:] + blobs[:1]),
            "header-twice": _assemble(compressed + compressed, blobs),
            "no-header": MAGIC + b"\x00" + blobs,
            "magic-only": MAGIC,
        }
        name = draw(st.sampled_from(sorted(ops)))
        return family, f"framing:{name}", ops[name], False
    label, result = draw(resigned(world, envelope, signers))
    return "resign", label, pack(result), False


def packed_envelopes(world: World) -> st.SearchStrategy[Case]:
    """Publisher envelopes in packed form, mutated (or not: control)."""

    @st.composite
    def make(draw: st.DrawFn) -> Case:
        envelope = draw(st.sampled_from(world.published))
        if draw(st.integers(0, 19)) == 0:
            return Case("envelope-packed", "control", "unchanged", pack(envelope), True)
        family, label, data, legit = draw(packed_mutation(world, envelope))
        return _maybe_text(draw, Case("envelope-packed", family, label, data, legit))

    return make()


# --- meta-recipes and client replies -----------------------------------------------

_META_SIGNERS = ("server", "old-server", "client", "alice", "mallory", "keep")


def meta_recipes(world: World) -> st.SearchStrategy[Case]:
    """Server-signed meta-recipes (packed, as sent; or DSSE JSON), mutated."""

    @st.composite
    def make(draw: st.DrawFn) -> Case:
        envelope = draw(st.sampled_from(world.metas))
        if draw(st.integers(0, 19)) == 0:
            return Case("meta-recipe", "control", "unchanged", pack(envelope), True)
        if draw(st.booleans()):
            family, label, data, legit = draw(packed_mutation(world, envelope, _META_SIGNERS))
        else:
            family, label, data, legit = draw(dsse_mutation(world, envelope, _META_SIGNERS))
            label = "dsse " + label
        return Case("meta-recipe", family, label, data, legit)

    return make()
