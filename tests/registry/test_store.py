"""The embedded registry as a user drives it: `fedseed recipe publish/pull/list/show/
lineage/verify --chain` on real files, one negative test per failure mode."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest


@pytest.fixture
def generate(fedseed):
    """``generate(name)``: `fedseed keys generate NAME`; returns (key id, public key file)."""

    def run(name: str) -> tuple[str, Path]:
        done = fedseed("keys", "generate", name)
        assert done.code == 0, done.err
        words = done.out.split()
        return words[1], Path(words[-1])

    return run


@pytest.fixture
def alice(generate) -> tuple[str, Path]:
    return generate("alice")


@pytest.fixture
def trusted_alice(fedseed, alice) -> tuple[str, Path]:
    """alice's key, trusted as publisher with `fedseed trust add`."""
    done = fedseed("trust", "add", str(alice[1]), "--role", "publisher")
    assert done.code == 0, done.err
    return alice


def listed(out: str) -> dict[str, tuple[str, str]]:
    """`fedseed recipe list` registry lines -> {digest: (name, tags)}."""
    rows = {}
    for line in out.splitlines():
        words = line.split()
        if len(words) >= 3 and words[2].startswith("sha256:"):
            rows[words[2]] = (words[0], words[1])
    return rows


def test_publish_prints_the_digest_and_list_shows_it(fedseed, alice, recipe_file):
    recipe = recipe_file(seed=0)

    published = fedseed("recipe", "publish", str(recipe), "--key", "alice")
    listing = fedseed("recipe", "list")

    assert published.code == 0, published.err
    digest = published.out.strip()
    assert digest.startswith("sha256:") and len(digest) == 71
    assert "1 recipe(s)" in listing.out
    assert listed(listing.out) == {digest: ("digits-mlp", "latest")}
    assert alice[0][:16] in listing.out


def test_publishing_the_same_recipe_twice_keeps_one_entry(fedseed, alice, recipe_file):
    recipe = recipe_file(seed=0)

    first = fedseed("recipe", "publish", str(recipe), "--key", "alice")
    second = fedseed("recipe", "publish", str(recipe), "--key", "alice")
    listing = fedseed("recipe", "list")

    assert first.code == 0 and second.code == 0, first.err + second.err
    assert first.out == second.out
    assert "1 recipe(s)" in listing.out
    blobs = Path(os.environ["FEDSEED_HOME"]) / "registry" / "blobs"
    assert len(list(blobs.glob("*.json"))) == 1


def test_the_publisher_can_move_its_own_tag(fedseed, alice, recipe_file):
    old = fedseed("recipe", "publish", str(recipe_file(seed=0)), "--key", "alice",
                  "--tag", "stable")

    new = fedseed("recipe", "publish", str(recipe_file(seed=1)), "--key", "alice",
                  "--tag", "stable")
    rows = listed(fedseed("recipe", "list").out)

    assert old.code == 0 and new.code == 0, old.err + new.err
    assert rows[new.out.strip()] == ("digits-mlp", "stable")
    assert rows[old.out.strip()] == ("digits-mlp", "-")


def test_another_key_cannot_move_a_tag(fedseed, alice, generate, recipe_file):
    owner = fedseed("recipe", "publish", str(recipe_file(seed=0)), "--key", "alice",
                    "--tag", "stable")
    generate("bob")

    moved = fedseed("recipe", "publish", str(recipe_file(seed=1)), "--key", "bob",
                    "--tag", "stable")
    rows = listed(fedseed("recipe", "list").out)

    assert owner.code == 0, owner.err
    assert moved.code == 2
    assert "tag digits-mlp:stable belongs to key" in moved.err
    assert "only that key can move it" in moved.err
    assert rows == {owner.out.strip(): ("digits-mlp", "stable")}


def test_pull_writes_the_verified_envelope(fedseed, trusted_alice, recipe_file, tmp_path):
    digest = fedseed("recipe", "publish", str(recipe_file(seed=0)), "--key", "alice").out.strip()

    by_tag = fedseed("recipe", "pull", "digits-mlp:latest", "-o", str(tmp_path / "a.json"))
    by_digest = fedseed("recipe", "pull", digest, "-o", str(tmp_path / "b.json"))
    verified = fedseed("recipe", "verify", str(tmp_path / "a.json"), "--role", "publisher")

    assert by_tag.code == 0 and by_digest.code == 0, by_tag.err + by_digest.err
    assert digest in by_tag.out and digest in by_digest.out
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert verified.code == 0 and digest in verified.out, verified.err


def test_pull_on_a_fresh_home_refuses_an_untrusted_publisher(
        fedseed, alice, recipe_file, tmp_path, monkeypatch):
    registry = tmp_path / "shared-registry"
    published = fedseed("recipe", "publish", str(recipe_file(seed=0)), "--key", "alice",
                        "--registry", str(registry))
    monkeypatch.setenv("FEDSEED_HOME", str(tmp_path / "second-home"))
    out = tmp_path / "pulled.json"

    pulled = fedseed("recipe", "pull", "digits-mlp", "--registry", str(registry),
                     "-o", str(out))

    assert published.code == 0, published.err
    assert pulled.code == 1
    assert f"signed by unknown key {alice[0][:16]}" in pulled.err
    assert not out.exists()
    assert list(tmp_path.glob(".pulled.json*")) == []


def test_pull_refuses_a_blob_tampered_on_disk(fedseed, trusted_alice, recipe_file, tmp_path):
    digest = fedseed("recipe", "publish", str(recipe_file(seed=0)), "--key", "alice").out.strip()
    blob = Path(os.environ["FEDSEED_HOME"]) / "registry" / "blobs" / f"{digest[7:]}.json"
    envelope = json.loads(blob.read_text())
    envelope["payload"] = envelope["payload"].replace("A", "B", 1)
    blob.write_text(json.dumps(envelope))
    out = tmp_path / "pulled.json"

    pulled = fedseed("recipe", "pull", digest, "-o", str(out))

    assert pulled.code == 1
    assert digest in pulled.err
    assert not out.exists()


@pytest.fixture
def substituted(fedseed, trusted_alice, recipe_file):
    """Two recipes by alice, tagged v1 and v2, then v1's blob replaced on disk by v2's
    (validly signed, wrong address); returns (v1 digest, v2 digest)."""
    wanted = fedseed("recipe", "publish", str(recipe_file(seed=0)), "--key", "alice",
                     "--tag", "v1").out.strip()
    other = fedseed("recipe", "publish", str(recipe_file(seed=1)), "--key", "alice",
                    "--tag", "v2").out.strip()
    blobs = Path(os.environ["FEDSEED_HOME"]) / "registry" / "blobs"
    (blobs / f"{wanted[7:]}.json").write_bytes((blobs / f"{other[7:]}.json").read_bytes())
    return wanted, other


def test_pull_by_digest_refuses_content_substituted_on_disk(fedseed, substituted, tmp_path):
    wanted, _ = substituted
    out = tmp_path / "pulled.json"

    pulled = fedseed("recipe", "pull", wanted, "-o", str(out))

    assert pulled.code == 1
    assert wanted in pulled.err
    assert not out.exists()


def test_pull_by_tag_refuses_content_substituted_on_disk(fedseed, substituted, tmp_path):
    wanted, _ = substituted
    out = tmp_path / "pulled.json"

    pulled = fedseed("recipe", "pull", "digits-mlp:v1", "-o", str(out))

    assert pulled.code == 1
    assert wanted in pulled.err
    assert not out.exists()


def test_verify_by_digest_refuses_content_substituted_on_disk(fedseed, substituted):
    wanted, _ = substituted

    verified = fedseed("recipe", "verify", wanted)

    assert verified.code == 1
    assert wanted in verified.err


def test_pull_of_an_unknown_ref_exits_2(fedseed, trusted_alice, tmp_path):
    out = tmp_path / "pulled.json"

    pulled = fedseed("recipe", "pull", "nothing-here:v1", "-o", str(out))

    assert pulled.code == 2
    assert "no recipe 'nothing-here:v1'" in pulled.err
    assert not out.exists()


@pytest.mark.parametrize("name", ["../escape", "a/b", "UPPER", ".hidden"])
def test_publish_refuses_a_name_that_is_not_a_plain_name(fedseed, alice, recipe_file, name,
                                                         tmp_path):
    published = fedseed("recipe", "publish", str(recipe_file(seed=0)), "--key", "alice",
                        "--name", name)
    listing = fedseed("recipe", "list")

    assert published.code == 2
    assert f"recipe name '{name}'" in published.err
    assert "0 recipe(s)" in listing.out
    assert not (tmp_path / "escape").exists()


def test_show_accepts_a_registry_ref_and_verifies_it(fedseed, trusted_alice, recipe_file):
    digest = fedseed("recipe", "publish", str(recipe_file(seed=0, name="my-digits")),
                     "--key", "alice", "--tag", "v1").out.strip()

    by_tag = fedseed("recipe", "show", "my-digits:v1")
    by_digest = fedseed("recipe", "show", digest)

    assert by_tag.code == 0 and by_digest.code == 0, by_tag.err + by_digest.err
    for shown in (by_tag, by_digest):
        assert digest in shown.out
        assert f"verified, signed by {trusted_alice[0][:16]}" in shown.out


def test_show_of_an_unpublished_ref_exits_2(fedseed):
    shown = fedseed("recipe", "show", "my-digits:v1")

    assert shown.code == 2
    assert "no recipe 'my-digits:v1'" in shown.err


def test_lineage_prints_the_child_and_its_parent(fedseed, trusted_alice, recipe_file):
    parent = recipe_file(seed=0)
    parent_digest = fedseed("recipe", "publish", str(parent), "--key", "alice").out.strip()
    child_digest = fedseed("recipe", "publish", str(recipe_file(parent=parent)),
                           "--key", "alice", "--tag", "child").out.strip()

    shown = fedseed("recipe", "lineage", child_digest)

    assert shown.code == 0, shown.err
    lines = shown.out.splitlines()
    assert child_digest[:19] in lines[0] and "round 0, personalize" in lines[0]
    assert parent_digest[:19] in lines[1] and "root" in lines[1]
    assert shown.out.count(f"signed by {trusted_alice[0][:12]}") == 2


def test_verify_chain_passes_when_every_ancestor_is_published(fedseed, trusted_alice,
                                                              recipe_file):
    parent = recipe_file(seed=0)
    fedseed("recipe", "publish", str(parent), "--key", "alice")
    child_digest = fedseed("recipe", "publish", str(recipe_file(parent=parent)),
                           "--key", "alice", "--tag", "child").out.strip()

    verified = fedseed("recipe", "verify", "--chain", child_digest)

    assert verified.code == 0, verified.err
    assert "lineage: every ancestor verified" in verified.out


def test_verify_chain_names_a_missing_ancestor(fedseed, trusted_alice, recipe_file):
    child = recipe_file(parent=recipe_file(seed=0))
    parent_digest = json.loads(child.read_text())["lineage"]["parents"][0]
    child_digest = fedseed("recipe", "publish", str(child), "--key", "alice").out.strip()

    verified = fedseed("recipe", "verify", "--chain", child_digest)

    assert child_digest.startswith("sha256:")
    assert verified.code == 1
    assert f"{parent_digest}: missing from the registry" in verified.err
