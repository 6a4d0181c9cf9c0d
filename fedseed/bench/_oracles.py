"""Oracles of the robustness benchmark: what each consumer should have accepted.

Each oracle is written from the format's definition, not from the code it judges
(they share only constants: the packed magic and dictionary, the payload type):

- :func:`decode_dsse`: a DSSE envelope as DSSE and RFC 8259 define it, with
  fedseed's one extra rule that a JSON object never repeats a member name (two
  readers could otherwise read different payloads from one envelope). Base64 may use
  either alphabet, padded or not (DSSE allows both), and nothing else.
- :func:`decode_packed`: the packed form as :mod:`fedseed.provenance.packed`
  documents it (minimal varint, one complete raw-deflate stream, a header of known
  keys with no repeated names, blobs used exactly).
- :func:`unfaithful_recipe`: whether an accepted recipe is exactly what its text says.
- :func:`unearned_signature`: whether bytes that verified were really signed by a key
  the verifier trusts for the role (the :class:`~._signed_world.Ledger` knows).
- :func:`reply_should_pass`: the judge's contract, rule by rule.

An oracle raises :class:`Refuse` (or returns a reason) when the input should be
refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import zlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from fedseed.errors import FedseedError
from fedseed.provenance._packed_dictionary import DICTIONARY
from fedseed.provenance.envelope import MAX_ENVELOPE_BYTES, MAX_SIGNATURES, PAYLOAD_TYPE
from fedseed.provenance.packed import MAGIC
from fedseed.recipe.codec import canonical_bytes, canonical_dict, parse_recipe


class Refuse(Exception):
    """The oracle's verdict: this input should be refused (the message says why)."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise Refuse(f"duplicate member name {key!r}")
        out[key] = value
    return out


def _no_constants(name: str) -> Any:
    raise Refuse(f"{name} is not JSON")


def as_utf8(data: bytes | str) -> bytes:
    """The bytes a reader gets: text must encode as UTF-8."""
    if isinstance(data, bytes):
        return data
    try:
        return data.encode("utf-8")
    except UnicodeEncodeError as e:
        raise Refuse("text that is not encodable as UTF-8") from e


def strict_json(raw: bytes) -> Any:
    """RFC 8259 JSON in UTF-8 (a leading BOM tolerated), no repeated member names."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Refuse("not UTF-8") from e
    try:
        return json.loads(text.removeprefix("\ufeff"), object_pairs_hook=_no_duplicates,
                          parse_constant=_no_constants)
    except (ValueError, RecursionError) as e:  # ValueError: JSONDecodeError, huge ints
        if isinstance(e, Refuse):
            raise
        raise Refuse(f"not JSON ({type(e).__name__})") from e


_B64_CORE = re.compile(r"[A-Za-z0-9+/_-]*")


def strict_b64(text: Any) -> bytes:
    """Base64 as DSSE allows it: standard or URL-safe alphabet, padding optional."""
    if not isinstance(text, str):
        raise Refuse("base64 field is not text")
    core = text.rstrip("=")
    pad = len(text) - len(core)
    if not _B64_CORE.fullmatch(core) or len(core) % 4 == 1 or pad > (-len(core)) % 4:
        raise Refuse("invalid base64")
    standard = core.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(standard + "=" * (-len(core) % 4), validate=True)
    except binascii.Error as e:
        raise Refuse("invalid base64") from e


def decode_dsse(data: bytes | str) -> tuple[bytes, str, tuple[tuple[str, bytes], ...]]:
    """(payload, payload type, ((keyid, sig), ...)) of a DSSE JSON envelope."""
    raw = as_utf8(data)
    if len(raw) > MAX_ENVELOPE_BYTES:
        raise Refuse("over the size limit")
    obj = strict_json(raw)
    if not isinstance(obj, dict) or not {"payload", "payloadType", "signatures"} <= set(obj):
        raise Refuse("not a DSSE object")
    kind, entries = obj["payloadType"], obj["signatures"]
    if not isinstance(kind, str) or not isinstance(entries, list) \
            or len(entries) > MAX_SIGNATURES:
        raise Refuse("wrong payloadType or signatures")
    signatures = []
    for entry in entries:
        if not isinstance(entry, dict) or "sig" not in entry:
            raise Refuse("signature without sig")
        keyid = entry.get("keyid", "")
        if not isinstance(keyid, str):
            raise Refuse("keyid is not text")
        signatures.append((keyid, strict_b64(entry["sig"])))
    return strict_b64(obj["payload"]), kind, tuple(signatures)


def decode_packed(data: bytes | str) -> tuple[bytes, str, tuple[tuple[str, bytes], ...]]:
    """(payload, payload type, ((keyid, sig), ...)) of a packed envelope."""
    raw = as_utf8(data)
    if raw[:4] != MAGIC or len(raw) > MAX_ENVELOPE_BYTES:
        raise Refuse("no magic, or over the size limit")
    size, at, shift = 0, 4, 0
    while True:  # LEB128, minimal
        if at >= len(raw) or shift > 28:
            raise Refuse("bad varint")
        byte = raw[at]
        size |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if not byte & 0x80:
            if byte == 0 and shift > 7:
                raise Refuse("varint is not minimal")
            break
    inflater = zlib.decompressobj(-15, zdict=DICTIONARY)
    try:
        text = inflater.decompress(raw[at:at + size], MAX_ENVELOPE_BYTES)
    except zlib.error as e:
        raise Refuse("bad deflate stream") from e
    if inflater.unconsumed_tail or not inflater.eof or inflater.unused_data \
            or at + size > len(raw):
        raise Refuse("header is not exactly one complete deflate stream")
    header = strict_json(text)
    if not isinstance(header, dict) or not {"t", "k", "n"} <= set(header) \
            or not set(header) <= {"t", "k", "n", "p"}:
        raise Refuse("header keys")
    kind, keyids, lengths = header["t"], header["k"], header["n"]
    if not isinstance(kind, str) or not isinstance(keyids, list) \
            or not all(isinstance(k, str) for k in keyids) or not isinstance(lengths, list) \
            or not all(type(n) is int and n >= 0 for n in lengths) \
            or len(keyids) > MAX_SIGNATURES:
        raise Refuse("header types")
    blobs = _Blobs(raw[at + size:], lengths)
    signatures = tuple((k, blobs.take()) for k in keyids)
    if "p" in header:
        try:
            payload = json.dumps(blobs.restore(header["p"]), sort_keys=True,
                                 separators=(",", ":"), ensure_ascii=False,
                                 allow_nan=False).encode("utf-8")
        except (ValueError, RecursionError) as e:
            raise Refuse("skeleton has no canonical JSON") from e
    else:
        payload = blobs.take()
    blobs.done()
    if len(payload) > MAX_ENVELOPE_BYTES:
        raise Refuse("payload over the size limit")
    return payload, kind, signatures


class _Blobs:
    def __init__(self, data: bytes, lengths: list[int]) -> None:
        self.data, self.at, self.lengths = data, 0, list(lengths)

    def take(self, size: int | None = None) -> bytes:
        if size is None:
            if not self.lengths:
                raise Refuse("more blobs than lengths")
            size = self.lengths.pop(0)
        if self.at + size > len(self.data):
            raise Refuse("blobs end early")
        self.at += size
        return self.data[self.at - size:self.at]

    def restore(self, node: Any) -> Any:
        if isinstance(node, dict):
            return {k: self.restore(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self.restore(v) for v in node]
        if node == "\x00d":
            return "sha256:" + self.take(32).hex()
        if node == "\x00h":
            return self.take(32).hex()
        if node == "\x00b":
            return base64.b64encode(self.take()).decode("ascii")
        return node

    def done(self) -> None:
        if self.lengths or self.at != len(self.data):
            raise Refuse("blobs left over")


def decode_envelope(data: bytes | str) -> tuple[bytes, str, tuple[tuple[str, bytes], ...]]:
    """Either form, as the readers take either."""
    raw = as_utf8(data)
    return decode_packed(raw) if raw[:4] == MAGIC else decode_dsse(raw)


# --- recipes -----------------------------------------------------------------------


def _same(text: Any, read: Any, top: bool = False) -> str | None:
    """Why ``read`` (the canonical reading) is not what ``text`` says, or None."""
    if isinstance(text, dict):
        if not isinstance(read, dict):
            return "an object read as something else"
        for key, value in text.items():
            if key not in read:
                if top and value is None:
                    continue  # an absent optional section spelled null
                return f"member {key!r} is not a field of what was read"
            why = _same(value, read[key])
            if why:
                return f"{key}: {why}"
        return None
    if isinstance(text, list):
        if not isinstance(read, list) or len(read) != len(text):
            return "a list read differently"
        for i, (a, b) in enumerate(zip(text, read, strict=True)):
            why = _same(a, b)
            if why:
                return f"[{i}]: {why}"
        return None
    if isinstance(text, bool) or isinstance(read, bool):
        return None if type(text) is type(read) and text == read else "a boolean coerced"
    if isinstance(text, (int, float)):
        ok = isinstance(read, (int, float)) and text == read
        return None if ok else f"number {text!r} read as {read!r}"
    if isinstance(text, str):
        if text == read or _same_instant(text, read):
            return None
        return f"text {text[:30]!r} read as {str(read)[:30]!r}"
    return None if read is None else f"null read as {read!r}"


def _same_instant(a: str, b: Any) -> bool:
    try:
        return isinstance(b, str) and datetime.fromisoformat(a) == datetime.fromisoformat(b)
    except ValueError:
        return False


def unfaithful_recipe(data: bytes | str, recipe: Any) -> str | None:
    """Why accepting ``data`` as ``recipe`` was wrong, or None when it was right.

    Right means: strict JSON (:func:`strict_json`); every member is a field of the
    recipe read, with the same value (numbers by value, timestamps by instant; an
    absent optional top-level section may be spelled ``null``; absent members take
    their defaults); and the recipe has canonical bytes that read back to itself.
    """
    try:
        text = strict_json(as_utf8(data))
    except Refuse as e:
        return f"accepted input that is not strict JSON: {e}"
    try:
        canonical = canonical_bytes(recipe)
        again = parse_recipe(canonical)
    except (FedseedError, ValueError) as e:  # UnicodeEncodeError: lone surrogates
        return f"accepted a recipe without canonical bytes ({type(e).__name__})"
    if again != recipe:
        return "canonical bytes read back as another recipe"
    return _same(text, canonical_dict(recipe), top=True)


# --- signatures, replies -----------------------------------------------------------


def unearned_signature(payload: bytes, payload_type: str, keyids: tuple[str, ...],
                       allowed: frozenset[str], ledger: Any) -> str | None:
    """Why a verification that returned ``keyids`` over these bytes was wrong, or None."""
    if payload_type != PAYLOAD_TYPE:
        return f"accepted payload type {payload_type[:40]!r}"
    if not keyids:
        return "accepted with no key id"
    for kid in keyids:
        if kid not in allowed:
            return f"accepted key {kid[:16]}, not trusted for the role"
        if not ledger.has(kid, payload_type, payload):
            return f"key {kid[:16]} never signed these bytes"
    return None


def pae(payload_type: bytes, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding, from the specification."""
    return b" ".join([b"DSSEv1", str(len(payload_type)).encode(), payload_type,
                      str(len(payload)).encode(), payload])


def signature_by(public: Any, envelope: tuple[bytes, str, tuple[tuple[str, bytes], ...]],
                 kid: str) -> bool:
    """Whether the decoded envelope holds a signature by ``public`` under id ``kid``."""
    from cryptography.exceptions import InvalidSignature

    payload, kind, signatures = envelope
    try:
        message = pae(kind.encode("utf-8"), payload)
    except UnicodeEncodeError:
        return False
    for keyid, sig in signatures:
        if keyid != kid:
            continue
        try:
            public.verify(sig, message)
            return True
        except InvalidSignature:
            continue
    return False


def reply_should_pass(payload: bytes, kid: str, meta_digest: str, expected: Mapping[str, Any],
                      known: frozenset[str]) -> str | None:
    """Why the judge should refuse a reply with these signed bytes by ``kid``, or None.

    The contract of :func:`fedseed.federation.server.judge_reply`: canonical bytes,
    the current meta-recipe as the only parent, evidence, the signer as producer,
    exactly the meta-recipe with the assignment applied (``expected``: its canonical
    dict without search space, portfolio, evidence and lineage), and a digest not
    already accepted this run or seen this round (``known``).
    """
    try:
        data = strict_json(payload)
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                               allow_nan=False).encode("utf-8")
    except (Refuse, ValueError) as e:
        return f"not canonical JSON ({e})"
    if canonical != payload or not isinstance(data, dict):
        return "not canonical bytes"
    if "sha256:" + hashlib.sha256(payload).hexdigest() in known:
        return "a digest already accepted or seen"
    lineage = data.get("lineage")
    if not isinstance(lineage, dict) or lineage.get("parents") != [meta_digest]:
        return "parent is not the current meta-recipe"
    if lineage.get("producer") != kid:
        return "producer is not the signer"
    if not isinstance(data.get("evidence"), dict):
        return "no evidence"
    rest = {k: v for k, v in data.items()
            if k not in ("search_space", "portfolio", "evidence", "lineage")}
    if _same(rest, expected, top=True) or _same(expected, rest, top=True):
        return "not the assigned configuration"
    return None
