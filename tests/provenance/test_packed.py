"""The packed wire form of envelopes: lossless, verified like JSON, and small enough
that a K = 4,096 trajectory meta-recipe stays under 18 KB."""

from __future__ import annotations

import hashlib
import sys
from datetime import UTC, datetime

import numpy as np
import pytest
from support import ASSETS

from fedseed.errors import SignatureError
from fedseed.meta import Options, TrajectoryAggregator
from fedseed.provenance.envelope import Envelope, sign_envelope, verify_signatures
from fedseed.provenance.keys import key_id
from fedseed.provenance.packed import is_packed, pack, read_envelope, unpack
from fedseed.recipe import canonical_bytes, load_builtin
from fedseed.recipe.evidence import Lineage
from fedseed.recipe.trajectory import encode_floats

sys.path.insert(0, str(ASSETS))
from make_envelopes import fixed_key  # noqa: E402

#: The meta-recipe limit of the seed-trajectory issue, in the stricter decimal sense.
LIMIT = 18_000


def trajectory_meta(recipe: str = "digits-mlp", pool: int = 4096, parents: int = 20):
    """A meta-recipe as the server seals it: every coefficient nonzero, 20 parents."""
    rng = np.random.default_rng(0)
    meta = TrajectoryAggregator(Options(), pool_size=pool).prepare(load_builtin(recipe))
    t = meta.trajectory.model_copy(update={
        "coefficients": encode_floats(rng.standard_normal(pool).astype(np.float32))})
    lineage = Lineage(parents=sorted("sha256:" + hashlib.sha256(bytes([i])).hexdigest()
                                     for i in range(parents)),
                      round=15, method="trajectory", producer=hashlib.sha256(b"k").hexdigest(),
                      created=datetime(2026, 11, 29, 17, 11, 54, tzinfo=UTC))
    return meta.model_copy(update={"trajectory": t, "lineage": lineage})


def signed(recipe) -> Envelope:
    key = fixed_key()
    return sign_envelope(Envelope(payload=canonical_bytes(recipe)), key,
                         key_id(key.public_key()))


def verifies(envelope: Envelope) -> bool:
    public = fixed_key().public_key()
    return verify_signatures(envelope, {key_id(public): public}) != []


@pytest.mark.parametrize("recipe", ["digits-mlp", "text-bert-tiny", "charlm-gpt2-tiny"])
def test_k4096_meta_recipe_is_under_18_kb_packed_and_unpacks_exactly(recipe):
    envelope = signed(trajectory_meta(recipe))

    packed = pack(envelope)

    assert len(envelope.to_json()) > 30_000  # DSSE JSON: base64 inside base64
    assert len(packed) <= LIMIT, len(packed)
    assert unpack(packed) == envelope
    assert verifies(unpack(packed))


def test_every_byte_of_a_coefficient_is_covered_by_the_signature():
    packed = bytearray(pack(signed(trajectory_meta(pool=64))))
    # The coefficients are the last blob: flip one bit in the last float32.
    packed[-1] ^= 0x01

    tampered = unpack(bytes(packed))

    assert not verifies(tampered)


@pytest.mark.parametrize("payload", [b'{"b": 1,  "a": [2]}', b"\x00\xffnot json",
                                     b'{"s": "\\u0000b"}', b"NaN", b'"\\ud800"',
                                     b"[" * 100 + b"]" * 100, b"1" * 5000])
def test_any_payload_round_trips_even_when_it_is_not_canonical_json(payload):
    envelope = Envelope(payload=payload, payload_type="text/plain")

    assert unpack(pack(envelope)) == envelope


def test_dsse_json_and_packed_are_both_read():
    envelope = signed(load_builtin("digits-mlp"))

    assert read_envelope(envelope.to_json()) == envelope
    assert read_envelope(pack(envelope)) == envelope
    assert is_packed(pack(envelope)) and not is_packed(envelope.to_json())


@pytest.mark.parametrize(("damage", "expected"), [
    (lambda b: b[:-5], "blobs end before"),
    (lambda b: b + b"x", "bytes after the last blob"),
    (lambda b: b[:4] + b"\xff\xff\xff\xff\xff\xff", "malformed packed envelope"),
    (lambda b: b[:6], "malformed packed envelope"),
    (lambda b: b"FSP0" + b[4:], "not a packed envelope"),
    (lambda b: b + b"\x00" * (1 << 20), "over the 1048576-byte limit"),
])
def test_damaged_packed_envelopes_are_one_clear_error(damage, expected):
    data = pack(signed(trajectory_meta(pool=64)))

    with pytest.raises(SignatureError, match=expected) as error:
        unpack(damage(data), "reply.bin")

    assert str(error.value).startswith("reply.bin: ")
    assert "\n" not in str(error.value)


def test_cli_packs_and_verifies_the_packed_file(fedseed, tmp_path):
    assert fedseed("trust", "add", str(ASSETS / "publisher.pub"), "--role",
                   "publisher").code == 0
    meta = tmp_path / "meta.dsse.json"
    meta.write_bytes(signed(trajectory_meta()).to_json())

    run = fedseed("recipe", "pack", str(meta), "-o", "meta.fsp")

    assert run.code == 0, run.err
    assert "packed" in run.out and (tmp_path / "meta.fsp").stat().st_size <= LIMIT
    assert fedseed("recipe", "verify", "meta.fsp").code == 0
    data = bytearray((tmp_path / "meta.fsp").read_bytes())
    data[-1] ^= 0x01
    (tmp_path / "bad.fsp").write_bytes(bytes(data))
    bad = fedseed("recipe", "verify", "bad.fsp")
    assert bad.code == 1 and "tampered" in bad.err
    back = fedseed("recipe", "pack", "meta.fsp", "-o", "back.json")
    assert back.code == 0 and (tmp_path / "back.json").read_bytes() == meta.read_bytes()


def test_absurdly_nested_header_is_a_signature_error_not_a_crash():
    import zlib

    from fedseed.provenance._packed_dictionary import DICTIONARY
    from fedseed.provenance.packed import MAGIC, _varint

    header = ('{"t":"x","k":[],"n":[],"p":' + "[" * 50_000 + "]" * 50_000 + "}").encode()
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15, zdict=DICTIONARY)
    body = deflate.compress(header) + deflate.flush()

    with pytest.raises(SignatureError, match="malformed packed envelope"):
        unpack(MAGIC + _varint(len(body)) + body)
    with pytest.raises(SignatureError, match="nested too deeply"):
        Envelope.from_json(b"[" * 100_000 + b"]" * 100_000)


def test_cli_pack_refuses_a_file_that_is_not_an_envelope(fedseed, tmp_path):
    (tmp_path / "plain.json").write_text('{"name": "not signed"}')

    run = fedseed("recipe", "pack", "plain.json", "-o", "out.fsp")

    assert run.code == 2 and "plain.json" in run.err
    assert len(run.err.strip().splitlines()) == 1
    assert not (tmp_path / "out.fsp").exists()


def test_header_naming_a_key_twice_is_refused():
    # Prepare: a header whose payload skeleton names "name" twice, the signed value
    # last: Python's reader would rebuild the signed payload, another reader would not.
    import json
    import zlib

    from fedseed.provenance._packed_dictionary import DICTIONARY
    from fedseed.provenance.packed import MAGIC, _read_varint, _varint

    data = pack(signed(load_builtin("digits-mlp")))
    size, at = _read_varint(data, len(MAGIC))
    text = zlib.decompressobj(-15, zdict=DICTIONARY).decompress(data[at:at + size]).decode()
    doubled = text.replace('"name":"digits-mlp"', '"name":"evil","name":"digits-mlp"', 1)
    assert doubled != text and json.loads(doubled) == json.loads(text)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15, zdict=DICTIONARY)
    body = deflate.compress(doubled.encode()) + deflate.flush()

    # Execute / Assert
    with pytest.raises(SignatureError, match="names the member 'name' twice"):
        unpack(MAGIC + _varint(len(body)) + body + data[at + size:])
