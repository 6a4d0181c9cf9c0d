"""Regenerate the envelope assets: `python tests/assets/make_envelopes.py`.

Ed25519 signatures are deterministic, so the same fixed test key gives the same
files every time; tests/provenance/test_assets.py checks they are in sync.
The key below is a published test key: never trust it for anything real.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEST_KEY_SEED = bytes(range(32))


def fixed_key():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(TEST_KEY_SEED)


def build() -> dict[str, bytes]:
    from fedseed.provenance.envelope import Envelope, sign_envelope
    from fedseed.provenance.keys import key_id, public_pem
    from fedseed.recipe import canonical_bytes, load_builtin

    key = fixed_key()
    keyid = key_id(key.public_key())
    good = sign_envelope(Envelope(payload=canonical_bytes(load_builtin("digits-mlp"))),
                         key, keyid)
    good_json = good.to_json()
    data = json.loads(good_json)

    payload = bytearray(base64.b64decode(data["payload"]))
    payload[payload.index(b"0.001")] = ord("9")  # lr 0.001 -> 9.001: one byte
    tampered_payload = {**data, "payload": base64.b64encode(bytes(payload)).decode()}

    sig = bytearray(base64.b64decode(data["signatures"][0]["sig"]))
    sig[0] ^= 0x01
    tampered_sig = {**data, "signatures": [{"keyid": keyid,
                                            "sig": base64.b64encode(bytes(sig)).decode()}]}

    invalid = sign_envelope(Envelope(payload=b'{"schema":"fedseed.recipe/v1"}'), key, keyid)

    def dump(obj) -> bytes:
        return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()

    return {
        "publisher.pub": public_pem(key.public_key()),
        "good.dsse.json": good_json,
        "tampered-payload.dsse.json": dump(tampered_payload),
        "tampered-signature.dsse.json": dump(tampered_sig),
        "truncated.dsse.json": good_json[: len(good_json) // 2],
        "unsigned.dsse.json": dump({**data, "signatures": []}),
        "invalid-recipe.dsse.json": invalid.to_json(),
    }


if __name__ == "__main__":
    for name, content in build().items():
        (HERE / name).write_bytes(content)
        print("wrote", HERE / name)
