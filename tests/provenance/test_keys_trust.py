"""Keys under FEDSEED_HOME and the trust store."""

from __future__ import annotations

import hashlib
import os
import stat

import pytest

from fedseed.errors import SignatureError
from fedseed.provenance.keys import export_public, generate_key, list_keys, load_private_key
from fedseed.provenance.trust import load_trust, save_trust


def test_generated_key_is_private_and_its_id_is_sha256_of_raw_public_key():
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    info = generate_key("alice")
    key, keyid = load_private_key("alice")

    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert keyid == info.keyid == hashlib.sha256(raw).hexdigest()
    assert stat.S_IMODE(os.stat(info.private_path).st_mode) == 0o600
    assert export_public("alice").startswith(b"-----BEGIN PUBLIC KEY-----")
    assert [k.name for k in list_keys()] == ["alice"]


def test_existing_key_is_never_overwritten():
    generate_key("bob")
    before = load_private_key("bob")[1]

    with pytest.raises(SignatureError, match="already exists"):
        generate_key("bob")
    assert load_private_key("bob")[1] == before


@pytest.mark.parametrize("name", ["../evil", "a/b", "", "x" * 65])
def test_key_names_cannot_escape_the_keys_folder(name):
    with pytest.raises(SignatureError, match="key name"):
        generate_key(name)


def test_trust_roles_add_and_revoke_permanently():
    generate_key("carol")
    pem = export_public("carol")
    store, entry = load_trust().add(pem, "publisher", "carol")
    store, entry = store.add(pem, "server")
    save_trust(store)

    assert load_trust().get(entry.keyid).roles == ("publisher", "server")
    revoked, _ = load_trust().revoke(entry.keyid[:12])
    save_trust(revoked)
    assert load_trust().public_keys("publisher") == {}
    with pytest.raises(SignatureError, match="revocation is permanent"):
        load_trust().add(pem, "client")


def test_unknown_role_and_ambiguous_revoke_are_refused():
    generate_key("dave")
    store, _ = load_trust().add(export_public("dave"), "publisher")

    with pytest.raises(SignatureError, match="role 'admin'"):
        store.add(export_public("dave"), "admin")
    with pytest.raises(SignatureError, match="matches 0 trusted keys"):
        store.revoke("00000000")


def test_corrupt_trust_store_is_one_clear_error(tmp_path):
    path = tmp_path / "trust.json"
    path.write_text("{not json")

    with pytest.raises(SignatureError, match="trust store is corrupt"):
        load_trust(path=path)
