"""DSSE v1 envelopes around canonical recipe bytes.

Follows the DSSE specification (https://github.com/secure-systems-lab/dsse): the
envelope is JSON ``{"payload", "payloadType", "signatures": [{"keyid", "sig"}]}`` with
standard base64, and every signature is made over the pre-authentication encoding
``PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body``. Any DSSE
verifier holding the Ed25519 public key accepts fedseed's envelopes.

Signed bytes are kept exactly as signed: :class:`Envelope` holds the payload bytes,
never a re-serialised recipe, and :func:`verify_signatures` returns only the key ids
whose signatures verify over those bytes.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fedseed.errors import SignatureError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

PAYLOAD_TYPE = "application/vnd.fedseed.recipe+json"
MAX_ENVELOPE_BYTES = 1 << 20
MAX_SIGNATURES = 16


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding of ``payload``."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


@dataclass(frozen=True)
class Signature:
    """One DSSE signature: the signer's key id and the raw signature bytes."""

    keyid: str
    sig: bytes


@dataclass(frozen=True)
class Envelope:
    """A DSSE envelope: payload bytes exactly as signed, and their signatures."""

    payload: bytes
    payload_type: str = PAYLOAD_TYPE
    signatures: tuple[Signature, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The envelope as DSSE JSON fields (standard base64)."""
        return {
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "payloadType": self.payload_type,
            "signatures": [{"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode("ascii")}
                           for s in self.signatures],
        }

    def to_json(self) -> bytes:
        """Envelope JSON bytes (sorted keys, compact)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes | str, source: str = "envelope") -> Envelope:
        """Parse envelope JSON; raise :class:`SignatureError` naming what is malformed.

        The JSON must be UTF-8 (RFC 8259) and name each member once: with a repeated
        ``payload``, two readers could read two different payloads from one envelope.
        """
        raw = utf8_bytes(data, source)
        if len(raw) > MAX_ENVELOPE_BYTES:
            raise SignatureError(f"{source}: envelope of {len(raw)} bytes is over the "
                                 f"{MAX_ENVELOPE_BYTES}-byte limit")
        try:
            # RFC 8259 lets a reader ignore a byte order mark (an editor may add one).
            text = raw.decode("utf-8").removeprefix("\ufeff")
            obj = json.loads(text, object_pairs_hook=_unique_members)
        except UnicodeDecodeError as e:
            raise SignatureError(f"{source}: envelope is not UTF-8 JSON ({e.reason} at byte "
                                 f"{e.start})") from e
        except _RepeatedMember as e:
            raise SignatureError(f"{source}: envelope JSON {e}") from e
        except json.JSONDecodeError as e:
            raise SignatureError(f"{source}: envelope is not JSON ({e})") from e
        except ValueError as e:  # an integer past Python's digit limit (4,300)
            raise SignatureError(f"{source}: envelope JSON holds a number with too many "
                                 "digits") from e
        except RecursionError as e:
            raise SignatureError(f"{source}: envelope JSON is nested too deeply") from e
        return cls.from_dict(obj, source)

    @classmethod
    def from_dict(cls, obj: Any, source: str = "envelope") -> Envelope:
        """Build an envelope from parsed DSSE JSON."""
        if not isinstance(obj, dict) or not {"payload", "payloadType", "signatures"} <= set(obj):
            raise SignatureError(f"{source}: not a DSSE envelope (needs payload, payloadType, "
                                 "signatures)")
        if not isinstance(obj["payloadType"], str) or not isinstance(obj["signatures"], list):
            raise SignatureError(f"{source}: DSSE payloadType must be text and signatures a list")
        if len(obj["signatures"]) > MAX_SIGNATURES:
            raise SignatureError(f"{source}: more than {MAX_SIGNATURES} signatures")
        signatures = []
        for i, entry in enumerate(obj["signatures"]):
            if not isinstance(entry, dict) or not isinstance(entry.get("sig"), str):
                raise SignatureError(f"{source}: signatures[{i}] has no sig")
            keyid = entry.get("keyid", "")
            if not isinstance(keyid, str):
                raise SignatureError(f"{source}: signatures[{i}].keyid must be text")
            signatures.append(Signature(keyid=keyid, sig=_b64decode(entry["sig"], source)))
        payload = obj["payload"]
        if not isinstance(payload, str):
            raise SignatureError(f"{source}: DSSE payload must be base64 text")
        return cls(payload=_b64decode(payload, source), payload_type=obj["payloadType"],
                   signatures=tuple(signatures))


def _b64decode(text: str, source: str) -> bytes:
    # DSSE lets a verifier accept standard or URL-safe base64, padded or not; nothing
    # else (no whitespace, no characters outside the alphabet).
    core = text.rstrip("=")
    try:
        if len(text) - len(core) > -len(core) % 4:
            raise ValueError("more padding than the last group needs")
        altchars = b"-_" if "-" in core or "_" in core else None
        return base64.b64decode(core + "=" * (-len(core) % 4), altchars=altchars,
                                validate=True)
    except (binascii.Error, ValueError) as e:
        raise SignatureError(f"{source}: invalid base64 in envelope") from e


def utf8_bytes(data: bytes | str, source: str) -> bytes:
    """``data`` as bytes; text that cannot be UTF-8 (a lone surrogate) is a
    :class:`SignatureError`."""
    if isinstance(data, bytes):
        return data
    try:
        return data.encode("utf-8")
    except UnicodeEncodeError as e:
        raise SignatureError(f"{source}: text is not encodable as UTF-8 ({e.reason})") from e


class _RepeatedMember(ValueError):
    pass


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` for :func:`json.loads`: refuse a repeated member name."""
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _RepeatedMember(f"names the member '{key}' twice")
        obj[key] = value
    return obj


def sign_envelope(envelope: Envelope, key: Ed25519PrivateKey, keyid: str) -> Envelope:
    """Return ``envelope`` with one more signature (by ``key``) appended.

    Co-signing never alters the payload or the existing signatures; signing twice
    with the same key is refused.
    """
    if any(s.keyid == keyid for s in envelope.signatures):
        raise SignatureError(f"envelope is already signed by key {keyid[:16]}")
    if len(envelope.signatures) >= MAX_SIGNATURES:
        raise SignatureError(f"envelope already has {MAX_SIGNATURES} signatures")
    sig = key.sign(pae(envelope.payload_type, envelope.payload))
    return Envelope(payload=envelope.payload, payload_type=envelope.payload_type,
                    signatures=(*envelope.signatures, Signature(keyid=keyid, sig=sig)))


def verify_signatures(envelope: Envelope, keys: dict[str, Ed25519PublicKey]) -> list[str]:
    """Key ids in ``keys`` whose signatures verify over the envelope's PAE.

    A signature whose key id is not in ``keys`` is skipped; a bad signature never
    verifies. Returns an empty list when nothing verifies.
    """
    from cryptography.exceptions import InvalidSignature

    message = pae(envelope.payload_type, envelope.payload)
    verified = []
    for signature in envelope.signatures:
        public = keys.get(signature.keyid)
        if public is None or signature.keyid in verified:
            continue
        try:
            public.verify(signature.sig, message)
        except InvalidSignature:
            continue
        verified.append(signature.keyid)
    return verified
