"""The packed form of a signed envelope: the same signed bytes, fewer bytes on the wire.

A DSSE envelope is JSON with its payload in base64, and a recipe's float32
coefficients are base64 inside that payload: 4,096 coefficients (16 KiB of numbers)
travel as ~29 KiB. The packed form carries them as raw bytes instead:

    b"FSP1" | varint n | raw deflate(header JSON, n bytes) | raw blobs, in order

(deflate with a preset dictionary of recipe skeletons: the schema's keys and the
built-in recipes' values cost almost nothing; :mod:`._packed_dictionary`).

The header holds the payload type, the key ids, the lengths of the blobs (digests
and key ids are always 32 bytes), and the payload JSON with every long base64
string, ``sha256:<hex>`` digest and hex key id taken out (each replaced by
``"\\u0000b"``, ``"\\u0000d"`` or ``"\\u0000h"``). The blobs are the signatures, then
the decoded strings in document order. Unpacking puts the strings back and writes
the JSON canonically (sorted keys, compact), which gives back the exact payload
bytes that were signed: nothing here is trusted, since a packed envelope that does
not reproduce its payload simply fails signature verification later.

Packing is lossless for any envelope: when the payload is not canonical JSON (or
contains the marker character), the payload travels whole, compressed.
"""

from __future__ import annotations

import base64
import json
import re
import zlib
from typing import Any

from fedseed.errors import SignatureError
from fedseed.provenance._packed_dictionary import DICTIONARY
from fedseed.provenance.envelope import (
    MAX_ENVELOPE_BYTES,
    MAX_SIGNATURES,
    Envelope,
    Signature,
    _unique_members,
    utf8_bytes,
)
from fedseed.recipe.codec import canonical_json

MAGIC = b"FSP1"
_MARK = "\x00"
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_KEYID = re.compile(r"[0-9a-f]{64}")
_B64 = re.compile(r"(?:[A-Za-z0-9+/]{4})+(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
#: Shorter base64 strings stay in the (compressed) header: not worth a blob.
_MIN_B64 = 64
#: Deeper payloads travel whole (recipes are about 5 levels deep).
_MAX_DEPTH = 32


def is_packed(data: bytes) -> bool:
    """True when ``data`` starts like a packed envelope."""
    return data[:4] == MAGIC


def pack(envelope: Envelope) -> bytes:
    """The packed bytes of ``envelope`` (see the module docstring)."""
    blobs: list[bytes] = [s.sig for s in envelope.signatures]
    lengths = [len(b) for b in blobs]
    header: dict[str, Any] = {"t": envelope.payload_type,
                              "k": [s.keyid for s in envelope.signatures]}
    skeleton = _skeleton(envelope.payload, blobs, lengths)
    if skeleton is None:
        blobs.append(envelope.payload)
        lengths.append(len(envelope.payload))
    else:
        header["p"] = skeleton
    header["n"] = lengths  # digests and key ids are always 32 bytes: no length
    # ASCII escapes: a lone surrogate in a key id or payload type still encodes.
    text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    # Raw deflate (no zlib framing) with a preset dictionary of recipe skeletons.
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15, zdict=DICTIONARY)
    compressed = deflate.compress(text.encode("utf-8")) + deflate.flush()
    return MAGIC + _varint(len(compressed)) + compressed + b"".join(blobs)


def unpack(data: bytes, source: str = "packed envelope") -> Envelope:
    """The envelope packed in ``data``; raise :class:`SignatureError` naming what is
    malformed. The result still has to pass signature verification."""
    if not is_packed(data):
        raise SignatureError(f"{source}: not a packed envelope (no {MAGIC.decode()} header)")
    if len(data) > MAX_ENVELOPE_BYTES:  # as for DSSE JSON, which is always larger
        raise SignatureError(f"{source}: packed envelope of {len(data)} bytes is over the "
                             f"{MAX_ENVELOPE_BYTES}-byte limit")
    try:
        size, at = _read_varint(data, len(MAGIC))
        inflater = zlib.decompressobj(-15, zdict=DICTIONARY)
        text = inflater.decompress(data[at:at + size], MAX_ENVELOPE_BYTES)
        if inflater.unconsumed_tail:
            raise SignatureError(f"{source}: header inflates past {MAX_ENVELOPE_BYTES} bytes")
        # One encoding per envelope: a complete stream, nothing after it, UTF-8 JSON.
        if not inflater.eof or inflater.unused_data:
            raise ValueError("the header is not one complete deflate stream")
        # A repeated key would give two readings of one header (and of its payload).
        header = json.loads(text.decode("utf-8"), object_pairs_hook=_unique_members)
        if not isinstance(header, dict) or not set(header) <= {"t", "k", "n", "p"}:
            raise ValueError("the header is not an object of t, k, n and p")
        payload_type, keyids, lengths = header["t"], header["k"], header["n"]
        if not (isinstance(payload_type, str) and isinstance(keyids, list)
                and all(isinstance(k, str) for k in keyids) and isinstance(lengths, list)
                and all(type(n) is int and n >= 0 for n in lengths)):
            raise ValueError("header fields have the wrong types")
        if len(keyids) > MAX_SIGNATURES:
            raise SignatureError(f"{source}: more than {MAX_SIGNATURES} signatures")
        blobs = _Reader(data, at + size, lengths)
        signatures = tuple(Signature(keyid=k, sig=blobs.next()) for k in keyids)
        # With a skeleton the payload is rebuilt from it; without, it is the next blob.
        payload = canonical_json(_restore(header["p"], blobs)) if "p" in header else blobs.next()
        blobs.finish()
    except SignatureError:
        raise
    except (KeyError, TypeError, ValueError, zlib.error, UnicodeDecodeError,
            RecursionError) as e:  # RecursionError: absurdly nested JSON
        raise SignatureError(f"{source}: malformed packed envelope "
                             f"({str(e) or type(e).__name__})") from e
    if len(payload) > MAX_ENVELOPE_BYTES:
        raise SignatureError(f"{source}: payload of {len(payload)} bytes is over the "
                             f"{MAX_ENVELOPE_BYTES}-byte limit")
    return Envelope(payload=payload, payload_type=payload_type, signatures=signatures)


class _Reader:
    """Blobs in order: those with a stated length, or 32-byte digests and key ids."""

    def __init__(self, data: bytes, at: int, lengths: list[int]) -> None:
        self.data, self.at, self.lengths = data, at, iter(lengths)

    def next(self, size: int | None = None) -> bytes:
        if size is None:
            size = next(self.lengths, None)
            if size is None:
                raise ValueError("more blobs used than the header lists")
        if self.at + size > len(self.data):
            raise ValueError("blobs end before their stated lengths")
        self.at += size
        return self.data[self.at - size:self.at]

    def finish(self) -> None:
        if next(self.lengths, None) is not None:
            raise ValueError("the header lists blobs that are never used")
        if self.at != len(self.data):
            raise ValueError(f"{len(self.data) - self.at} bytes after the last blob")


def read_envelope(data: bytes | str, source: str = "envelope") -> Envelope:
    """An envelope from DSSE JSON or from its packed form."""
    raw = utf8_bytes(data, source)
    return unpack(raw, source) if is_packed(raw) else Envelope.from_json(raw, source)


class _Unpackable(Exception):
    """The payload cannot be split into a skeleton and blobs."""


def _skeleton(payload: bytes, blobs: list[bytes], lengths: list[int]) -> Any | None:
    """The payload JSON with its binary strings moved into ``blobs`` (and the lengths
    of base64 ones into ``lengths``); None when the payload would not come back byte
    for byte."""
    taken: list[bytes] = []
    taken_lengths: list[int] = []
    try:
        skeleton = _take(json.loads(payload), taken, taken_lengths, 0)
        reader = _Reader(b"".join(taken), 0, taken_lengths)
        if canonical_json(_restore(skeleton, reader)) != payload:
            return None
    # ValueError: NaN, huge numbers, lone surrogates; RecursionError: deep nesting.
    except (UnicodeError, ValueError, RecursionError, _Unpackable):
        return None
    blobs.extend(taken)
    lengths.extend(taken_lengths)
    return skeleton


def _take(node: Any, taken: list[bytes], lengths: list[int], depth: int) -> Any:
    if depth > _MAX_DEPTH:  # unpacking must not depend on the reader's stack depth
        raise _Unpackable
    if isinstance(node, dict):
        if any(_MARK in key for key in node):
            raise _Unpackable
        return {key: _take(value, taken, lengths, depth + 1) for key, value in node.items()}
    if isinstance(node, list):
        return [_take(value, taken, lengths, depth + 1) for value in node]
    if isinstance(node, str):
        if _MARK in node:
            raise _Unpackable
        if _DIGEST.fullmatch(node):
            taken.append(bytes.fromhex(node[7:]))
            return _MARK + "d"
        if _KEYID.fullmatch(node):  # a key id (before base64, which it also matches)
            taken.append(bytes.fromhex(node))
            return _MARK + "h"
        if len(node) >= _MIN_B64 and _B64.fullmatch(node):
            taken.append(base64.b64decode(node))
            lengths.append(len(taken[-1]))
            return _MARK + "b"
    return node


def _restore(node: Any, blobs: _Reader) -> Any:
    if isinstance(node, dict):
        return {key: _restore(value, blobs) for key, value in node.items()}
    if isinstance(node, list):
        return [_restore(v, blobs) for v in node]
    if node == _MARK + "d":
        return "sha256:" + blobs.next(32).hex()
    if node == _MARK + "h":
        return blobs.next(32).hex()
    if node == _MARK + "b":
        return base64.b64encode(blobs.next()).decode("ascii")
    return node


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while shift < 35:
        if at >= len(data):
            raise ValueError("truncated header length")
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if not byte & 0x80:
            if byte == 0 and shift > 7:
                raise ValueError("header length is not a minimal varint")
            return value, at
    raise ValueError("header length is not a valid varint")
