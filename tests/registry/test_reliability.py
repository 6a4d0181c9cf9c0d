"""The registry under stress, with real processes and real files: one-byte tampering,
50 concurrent publishers, publishers killed with SIGKILL, and a server restart."""

from __future__ import annotations

import base64
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from support import Run, run_fedseed

from fedseed.provenance.envelope import Envelope
from fedseed.provenance.trust import TrustStore
from fedseed.provenance.verify import verify_envelope
from fedseed.recipe import digest_bytes, read_recipe_file, recipe_digest

CONCURRENT = 50

# Publishes digits-mlp with seeds FIRST, FIRST+1, ... into REGISTRY with alice's key
# from KEYHOME, printing each seed once its publish has returned; runs until killed.
PUBLISHER = """
import sys
from pathlib import Path
from fedseed.provenance.envelope import Envelope, sign_envelope
from fedseed.provenance.keys import load_private_key, public_pem
from fedseed.provenance.trust import TrustStore
from fedseed.recipe import canonical_bytes, canonical_dict, load_builtin, recipe_from_dict
from fedseed.registry.service import accept_envelope
from fedseed.registry.store import LocalRegistry

registry, keyhome, first = LocalRegistry(Path(sys.argv[1])), Path(sys.argv[2]), int(sys.argv[3])
key, keyid = load_private_key("alice", home=keyhome)
trust, _ = TrustStore().add(public_pem(key.public_key()), "publisher")
data = canonical_dict(load_builtin("digits-mlp"))
for seed in range(first, first + 100_000):
    data["init"]["seed"] = seed
    envelope = sign_envelope(Envelope(canonical_bytes(recipe_from_dict(data))), key, keyid)
    accept_envelope(registry, envelope, trust)
    print(seed, flush=True)
"""


@pytest.fixture
def alice_trust(keyring) -> TrustStore:
    store, _ = TrustStore().add((keyring / "keys" / "alice.pub").read_bytes(), "publisher")
    return store


def check_registry(root: Path, trust: TrustStore) -> set[str]:
    """Assert a registry folder is sound; return the digests its index holds.

    Sound: SQLite's integrity check passes; every tag names an indexed recipe; every
    indexed digest has a blob that parses, verifies and hashes to that digest; every
    visible file under blobs/ is a complete envelope named by its payload's hash
    (an unindexed one is an orphan of a killed publish: invisible, but never partial).
    Temporary files of killed publishes must be hidden (leading dot).
    """
    db = sqlite3.connect(root / "index.sqlite")
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        digests = {d for (d,) in db.execute("SELECT digest FROM recipes")}
        tagged = {d for (d,) in db.execute("SELECT digest FROM tags")}
    finally:
        db.close()
    assert tagged <= digests
    for digest in digests:
        blob = root / "blobs" / f"{digest.removeprefix('sha256:')}.json"
        verified = verify_envelope(Envelope.from_json(blob.read_bytes(), str(blob)), trust,
                                   role="publisher")
        assert verified.digest == digest
    for path in (root / "blobs").iterdir():
        if path.name.startswith("."):
            assert path.name.endswith(".tmp"), path
            continue
        envelope = Envelope.from_json(path.read_bytes(), str(path))
        assert path.name == digest_bytes(envelope.payload).removeprefix("sha256:") + ".json"
    return digests


def tamper(envelope: Envelope, field: str, position: int) -> bytes:
    """The envelope JSON with one byte of the payload or of the signature flipped."""
    data = json.loads(envelope.to_json())
    if field == "payload":
        raw = bytearray(envelope.payload)
        raw[position] ^= 0x01
        data["payload"] = base64.b64encode(bytes(raw)).decode()
    else:
        raw = bytearray(envelope.signatures[0].sig)
        raw[position] ^= 0x01
        data["signatures"][0]["sig"] = base64.b64encode(bytes(raw)).decode()
    return json.dumps(data).encode()


def start_together(commands: list[list[str]]) -> list[Run]:
    """Start every ``fedseed`` command at once, each its own process (forked from the
    warm parent, so that 50 of them do not each spend a second importing), then wait
    for all of them."""
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        return list(pool.map(lambda args: run_fedseed(*args), commands))


@pytest.mark.parametrize(("field", "position"), [
    ("payload", 0), ("payload", 500), ("payload", -1), ("signature", 0), ("signature", -1),
])
def test_one_flipped_byte_is_refused_by_server_and_verify(fedseed, trust, sign, variant,
                                                          server, tmp_path, field, position):
    trust("alice")
    tampered = tamper(sign(variant(20)), field, position)
    (tmp_path / "tampered.json").write_bytes(tampered)
    before = server.held()

    response = httpx.post(f"{server.url}/v1/recipes", content=tampered, timeout=30)
    verified = fedseed("recipe", "verify", str(tmp_path / "tampered.json"))

    assert response.status_code == 403
    assert "does not verify" in response.json()["error"]
    assert server.held() == before
    assert verified.code == 1
    assert "does not verify" in verified.err


@pytest.mark.slow
def test_50_concurrent_cli_publishes_into_one_folder(keys, recipe_file, alice_trust, tmp_path):
    registry = tmp_path / "registry"
    files = [recipe_file(seed=100 + i) for i in range(CONCURRENT)]
    expected = {recipe_digest(read_recipe_file(f)) for f in files}

    runs = start_together([["recipe", "publish", str(f), "--key", "alice", "--registry",
                            str(registry)] for f in files])

    assert [r.code for r in runs] == [0] * CONCURRENT, [r.err for r in runs]
    assert {r.out.strip() for r in runs} == expected
    assert check_registry(registry, alice_trust) == expected


@pytest.mark.slow
def test_50_concurrent_cli_publishes_over_http(keys, recipe_file, alice_trust, serve):
    server = serve()
    files = [recipe_file(seed=200 + i) for i in range(CONCURRENT)]
    expected = {recipe_digest(read_recipe_file(f)) for f in files}

    runs = start_together([["recipe", "publish", str(f), "--key", "alice", "--registry",
                            server.url] for f in files])

    assert [r.code for r in runs] == [0] * CONCURRENT, [r.err for r in runs]
    assert {r.out.strip() for r in runs} == expected
    assert server.count() == CONCURRENT
    assert check_registry(server.store, alice_trust) == expected


@pytest.mark.slow
def test_publishers_killed_mid_publish_leave_no_partial_entry(fedseed, keys, keyring, variant,
                                                              recipe_file, alice_trust,
                                                              tmp_path):
    registry = tmp_path / "registry"
    rng = random.Random(20260101)
    acknowledged = set()
    for round_ in range(8):
        process = subprocess.Popen(
            [sys.executable, "-c", PUBLISHER, str(registry), str(keyring), str(round_ * 1000)],
            stdout=subprocess.PIPE, text=True)
        acknowledged.add(int(process.stdout.readline()))  # imports done, publishing
        time.sleep(rng.uniform(0.0, 0.2))
        os.kill(process.pid, signal.SIGKILL)
        out, _ = process.communicate(timeout=30)
        acknowledged.update(int(line) for line in out.split())
        assert process.returncode == -signal.SIGKILL

    indexed = check_registry(registry, alice_trust)
    listing = fedseed("recipe", "list", "--registry", str(registry))
    after = fedseed("recipe", "publish", str(recipe_file(seed=999)), "--key", "alice",
                    "--registry", str(registry))

    assert {recipe_digest(variant(seed)) for seed in acknowledged} <= indexed
    assert f"{len(indexed)} recipe(s)" in listing.out
    assert after.code == 0, after.err
    assert check_registry(registry, alice_trust) == indexed | {after.out.strip()}


def test_a_restarted_server_serves_everything_published_before(sign, variant, alice_trust,
                                                               serve, tmp_path):
    first = serve()
    envelopes = [sign(variant(300 + i, f"kept-{i}")) for i in range(5)]
    for envelope in envelopes:
        created = httpx.post(f"{first.url}/v1/recipes", content=envelope.to_json(),
                             params={"tag": "v1"}, timeout=30)
        assert created.status_code == 201, created.text

    first.stop()
    second = serve(store=first.store, port=first.port)

    assert first.process.returncode is not None
    assert second.count() == len(envelopes)
    for i, envelope in enumerate(envelopes):
        digest = digest_bytes(envelope.payload)
        by_digest = httpx.get(f"{second.url}/v1/recipes/{digest}", timeout=10)
        by_tag = httpx.get(f"{second.url}/v1/tags/kept-{i}/v1", timeout=10)
        assert by_digest.status_code == 200 and by_tag.content == by_digest.content
        verified = verify_envelope(Envelope.from_json(by_digest.content), alice_trust,
                                   role="publisher")
        assert verified.digest == digest and verified.recipe.name == f"kept-{i}"
