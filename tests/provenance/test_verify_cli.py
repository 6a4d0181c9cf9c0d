"""`fedseed recipe sign/verify` as a user runs them: one negative test per failure."""

from __future__ import annotations

import shutil

import pytest
from support import ASSETS


@pytest.fixture
def trusted(fedseed, tmp_path):
    """The asset key trusted as publisher."""
    run = fedseed("trust", "add", str(ASSETS / "publisher.pub"), "--role", "publisher",
                  "--name", "assets")
    assert run.code == 0, run.err
    return run


def test_good_envelope_verifies(fedseed, trusted):
    run = fedseed("recipe", "verify", str(ASSETS / "good.dsse.json"), "--role", "publisher")

    assert run.code == 0, run.err
    assert "verified digits-mlp sha256:" in run.out


@pytest.mark.parametrize(
    ("asset", "role", "reason"),
    [
        ("tampered-payload.dsse.json", None, "payload was tampered with"),
        ("tampered-signature.dsse.json", None, "payload was tampered with or the signature"),
        ("truncated.dsse.json", None, "not JSON"),
        ("unsigned.dsse.json", None, "unsigned envelope"),
        ("invalid-recipe.dsse.json", None, "not a valid recipe"),
        ("good.dsse.json", "server", "trusted as publisher, not server"),
    ],
)
def test_each_failure_exits_1_with_its_reason(fedseed, trusted, asset, role, reason):
    extra = ["--role", role] if role else []

    run = fedseed("recipe", "verify", str(ASSETS / asset), *extra)

    assert run.code == 1
    assert reason in run.err
    assert len(run.err.strip().splitlines()) == 1


def test_unknown_key_exits_1(fedseed):
    run = fedseed("recipe", "verify", str(ASSETS / "good.dsse.json"))

    assert run.code == 1 and "unknown key" in run.err


def test_revoked_key_exits_1(fedseed, trusted):
    keyid = trusted.out.split()[2]
    assert fedseed("trust", "revoke", keyid).code == 0

    run = fedseed("recipe", "verify", str(ASSETS / "good.dsse.json"))

    assert run.code == 1 and "revoked key" in run.err


def test_sign_then_cosign_then_verify(fedseed, tmp_path):
    for name in ("alice", "bob"):
        assert fedseed("keys", "generate", name).code == 0
        (tmp_path / f"{name}.pub").write_text(fedseed("keys", "export", name).out)
    assert fedseed("trust", "add", str(tmp_path / "bob.pub"), "--role", "server").code == 0
    recipe = tmp_path / "r.json"
    shutil.copy(ASSETS.parent.parent / "recipes" / "digits-mlp.json", recipe)

    first = fedseed("recipe", "sign", str(recipe), "--key", "alice", "-o", str(tmp_path / "a"))
    second = fedseed("recipe", "sign", str(tmp_path / "a"), "--key", "bob",
                     "-o", str(tmp_path / "ab"))
    verified = fedseed("recipe", "verify", str(tmp_path / "ab"), "--role", "server")

    assert first.code == 0 and second.code == 0, first.err + second.err
    assert "2 signature(s)" in second.out
    assert verified.code == 0, verified.err


def test_signing_needs_an_existing_key(fedseed, tmp_path):
    run = fedseed("recipe", "sign", str(ASSETS / "good.dsse.json"), "--key", "nobody",
                  "-o", str(tmp_path / "x"))

    assert run.code == 2 and "no key 'nobody'" in run.err
    assert not (tmp_path / "x").exists()


def test_unknown_role_is_bad_input(fedseed, trusted):
    run = fedseed("recipe", "verify", str(ASSETS / "good.dsse.json"), "--role", "admin")

    assert run.code == 2 and "--role 'admin' is not one of" in run.err


def test_missing_file_is_named_not_looked_up_in_the_registry(fedseed, tmp_path):
    run = fedseed("recipe", "verify", str(tmp_path / "nothere.dsse.json"))

    assert run.code == 2 and "nothere.dsse.json: no such file" in run.err


def test_chain_of_a_file_walks_its_parents_not_itself(fedseed, trusted):
    # The asset is a root recipe (no parents): nothing to find in an empty registry.
    run = fedseed("recipe", "verify", str(ASSETS / "good.dsse.json"), "--chain")

    assert run.code == 0, run.err
    assert "every ancestor verified" in run.out
