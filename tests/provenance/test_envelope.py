"""DSSE envelopes: the spec's encoding, interoperability, tampering."""

from __future__ import annotations

import base64
import json
import sys

import pytest
from support import ASSETS

from fedseed.errors import SignatureError
from fedseed.provenance.envelope import (
    PAYLOAD_TYPE,
    Envelope,
    pae,
    sign_envelope,
    verify_signatures,
)
from fedseed.provenance.keys import key_id
from fedseed.recipe import canonical_bytes, load_builtin

sys.path.insert(0, str(ASSETS))
from make_envelopes import build, fixed_key  # noqa: E402


def test_pae_matches_the_dsse_specification_example():
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world")


def test_assets_are_in_sync_with_the_generator():
    for name, content in build().items():
        assert (ASSETS / name).read_bytes() == content, name


def test_envelope_json_has_exactly_the_dsse_fields():
    data = json.loads((ASSETS / "good.dsse.json").read_bytes())

    assert set(data) == {"payload", "payloadType", "signatures"}
    assert data["payloadType"] == PAYLOAD_TYPE
    assert base64.b64decode(data["payload"]) == canonical_bytes(load_builtin("digits-mlp"))
    assert set(data["signatures"][0]) == {"keyid", "sig"}


def test_securesystemslib_verifies_fedseed_envelopes():
    from securesystemslib.dsse import Envelope as SslibEnvelope
    from securesystemslib.signer import SSlibKey

    public = fixed_key().public_key()
    key = SSlibKey.from_crypto(public, keyid=key_id(public), scheme="ed25519")
    envelope = SslibEnvelope.from_dict(json.loads((ASSETS / "good.dsse.json").read_bytes()))

    verified = envelope.verify([key], 1)

    assert list(verified) == [key_id(public)]


def test_securesystemslib_rejects_a_tampered_payload():
    from securesystemslib.dsse import Envelope as SslibEnvelope
    from securesystemslib.exceptions import VerificationError
    from securesystemslib.signer import SSlibKey

    public = fixed_key().public_key()
    key = SSlibKey.from_crypto(public, keyid=key_id(public), scheme="ed25519")
    data = json.loads((ASSETS / "tampered-payload.dsse.json").read_bytes())

    with pytest.raises(VerificationError):
        SslibEnvelope.from_dict(data).verify([key], 1)


def test_fedseed_verifies_securesystemslib_signatures():
    from securesystemslib.dsse import Envelope as SslibEnvelope
    from securesystemslib.signer import CryptoSigner

    key = fixed_key()
    signer = CryptoSigner(key)
    payload = canonical_bytes(load_builtin("image-cnn-small"))
    theirs = SslibEnvelope(payload=payload, payload_type=PAYLOAD_TYPE, signatures={})
    theirs.sign(signer)

    ours = Envelope.from_dict(theirs.to_dict())

    assert verify_signatures(ours, {signer.public_key.keyid: key.public_key()}) == [
        signer.public_key.keyid]


def test_cosigning_appends_and_keeps_the_first_signature():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    first, second = fixed_key(), Ed25519PrivateKey.generate()
    envelope = Envelope.from_json((ASSETS / "good.dsse.json").read_bytes())

    cosigned = sign_envelope(envelope, second, key_id(second.public_key()))

    assert cosigned.payload == envelope.payload
    assert cosigned.signatures[0] == envelope.signatures[0]
    keys = {key_id(k.public_key()): k.public_key() for k in (first, second)}
    assert sorted(verify_signatures(cosigned, keys)) == sorted(keys)
    with pytest.raises(SignatureError, match="already signed"):
        sign_envelope(cosigned, second, key_id(second.public_key()))


@pytest.mark.parametrize("asset", ["tampered-payload.dsse.json", "tampered-signature.dsse.json"])
def test_one_byte_tampering_breaks_the_signature(asset):
    public = fixed_key().public_key()
    envelope = Envelope.from_json((ASSETS / asset).read_bytes())

    assert verify_signatures(envelope, {key_id(public): public}) == []


def test_truncated_envelope_is_a_signature_error():
    with pytest.raises(SignatureError, match="not JSON"):
        Envelope.from_json((ASSETS / "truncated.dsse.json").read_bytes(), "t.json")


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"payload": "e30="}, "not a DSSE envelope"),
        ({"payload": "%%%", "payloadType": PAYLOAD_TYPE, "signatures": []}, "base64"),
        ({"payload": "e30=", "payloadType": PAYLOAD_TYPE, "signatures": [{"keyid": "a"}]},
         "has no sig"),
        ([1, 2], "not a DSSE envelope"),
    ],
)
def test_malformed_envelopes_are_named(obj, expected):
    with pytest.raises(SignatureError, match=expected):
        Envelope.from_dict(obj)


def test_url_safe_base64_is_accepted_as_dsse_allows():
    data = json.loads((ASSETS / "good.dsse.json").read_bytes())
    sig = base64.b64decode(data["signatures"][0]["sig"])
    data["signatures"][0]["sig"] = base64.urlsafe_b64encode(sig).decode().rstrip("=")
    public = fixed_key().public_key()

    assert verify_signatures(Envelope.from_dict(data), {key_id(public): public})


# --- found by `fedseed bench robustness` ------------------------------------------------


def test_envelope_naming_payload_twice_is_refused():
    # Prepare: the signed payload last, another one first. Python's JSON reader keeps
    # the last, others keep the first: two readings of one envelope.
    good = json.loads((ASSETS / "good.dsse.json").read_bytes())
    rest = json.dumps({"payloadType": good["payloadType"], "signatures": good["signatures"]})
    text = '{"payload":"e30=","payload":"' + good["payload"] + '",' + rest[1:]

    # Execute / Assert
    with pytest.raises(SignatureError, match="names the member 'payload' twice"):
        Envelope.from_json(text.encode())


def test_url_safe_base64_with_characters_outside_the_alphabet_is_refused():
    # Prepare: URL-safe base64 (it has a '-') with junk in it, which the URL-safe
    # decoder used to skip.
    obj = {"payload": "e3-0!!!", "payloadType": PAYLOAD_TYPE, "signatures": []}

    # Execute / Assert
    with pytest.raises(SignatureError, match="invalid base64"):
        Envelope.from_dict(obj)


def test_base64_with_more_padding_than_needed_is_refused():
    obj = {"payload": "e30===", "payloadType": PAYLOAD_TYPE, "signatures": []}

    with pytest.raises(SignatureError, match="invalid base64"):
        Envelope.from_dict(obj)


def test_number_of_5000_digits_is_a_signature_error_not_a_crash():
    # Prepare: Python refuses to convert integers past 4,300 digits (a ValueError).
    text = b'{"payload":"e30=","payloadType":' + b"1" * 5000 + b',"signatures":[]}'

    # Execute / Assert
    with pytest.raises(SignatureError, match="too many digits"):
        Envelope.from_json(text)


def test_text_with_a_lone_surrogate_is_a_signature_error_not_a_crash():
    from fedseed.provenance.packed import read_envelope

    with pytest.raises(SignatureError, match="not encodable as UTF-8"):
        read_envelope('{"payload": "\ud800"}')


def test_envelope_json_in_utf16_is_refused():
    # RFC 8259: JSON between systems is UTF-8 (json.loads of bytes guesses UTF-16 too).
    text = (ASSETS / "good.dsse.json").read_text().encode("utf-16")

    with pytest.raises(SignatureError, match="not UTF-8"):
        Envelope.from_json(text)
