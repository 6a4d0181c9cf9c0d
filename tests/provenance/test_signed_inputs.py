"""A signed recipe given where a recipe is expected is used only once its signature
verified against the trust store; otherwise one line says how to verify or trust it.
One negative test per entry point: personalize, assemble, simulate, the ServerApp's
``recipe`` run config, and the plain recipe reader."""

from __future__ import annotations

import pytest
from support import ASSETS

from fedseed.errors import RecipeError, VerificationError
from fedseed.federation.config import FederationConfig
from fedseed.provenance.resolve import resolve_trusted
from fedseed.provenance.trust import TrustStore
from fedseed.recipe import read_recipe_file

SIGNED = ASSETS / "good.dsse.json"  # digits-mlp, signed by the asset publisher key
SHORT = ["--set", "budget.max_steps=10", "--set", "budget.eval_every=5"]


@pytest.fixture
def trusted(fedseed):
    run = fedseed("trust", "add", str(ASSETS / "publisher.pub"), "--role", "publisher",
                  "--name", "assets")
    assert run.code == 0, run.err


def _one_line_refusal(run, code=1):
    assert run.code == code, run.err
    lines = run.err.strip().splitlines()
    assert len(lines) == 1, run.err
    return lines[0]


def test_personalize_refuses_an_untrusted_signed_recipe_and_writes_nothing(fedseed, tmp_path):
    out = tmp_path / "out"

    run = fedseed("personalize", str(SIGNED), "--data", "digits", "--out", str(out), *SHORT)

    line = _one_line_refusal(run)
    assert "unknown key" in line and "fedseed trust add" in line
    assert not out.exists()


def test_personalize_uses_a_signed_recipe_once_its_signer_is_trusted(fedseed, tmp_path,
                                                                     trusted):
    out = tmp_path / "out"

    run = fedseed("personalize", str(SIGNED), "--data", "digits", "--out", str(out), *SHORT)

    assert run.code == 0, run.err
    assert "signature verified" in run.err
    assert (out / "recipe.json").is_file()


def test_assemble_refuses_an_untrusted_signed_recipe(fedseed, tmp_path):
    run = fedseed("assemble", str(SIGNED), "-o", str(tmp_path / "w.safetensors"))

    assert "unknown key" in _one_line_refusal(run)
    assert not (tmp_path / "w.safetensors").exists()


def test_tampered_signed_recipe_is_refused_even_when_its_signer_is_trusted(fedseed, tmp_path,
                                                                         trusted):
    run = fedseed("personalize", str(ASSETS / "tampered-payload.dsse.json"), "--data",
                  "digits", "--out", str(tmp_path / "out"), *SHORT)

    assert "tampered" in _one_line_refusal(run)


def test_simulate_refuses_an_untrusted_signed_recipe_before_writing(fedseed, tmp_path):
    home = tmp_path / "sim"

    run = fedseed("simulate", "--clients", "2", "--recipe", str(SIGNED), "--home", str(home))

    assert "unknown key" in _one_line_refusal(run)
    assert not home.exists()


def test_server_app_refuses_an_untrusted_signed_recipe_before_any_round():
    from fedseed.app.server_app import run_federation

    cfg = FederationConfig(recipe=str(SIGNED), auto_keys=True)

    # The check runs before the first message: the grid is never reached.
    with pytest.raises(VerificationError, match="unknown key"):
        run_federation(None, cfg)  # type: ignore[arg-type]


def test_resolve_trusted_hands_back_the_signed_recipe_after_verification():
    from fedseed.provenance.keys import load_public_pem, public_pem

    pem = public_pem(load_public_pem((ASSETS / "publisher.pub").read_bytes()))
    trust, _ = TrustStore().add(pem, "publisher", "assets")

    resolved = resolve_trusted(str(SIGNED), trust)

    assert resolved.verified is not None and resolved.recipe.name == "digits-mlp"
    with pytest.raises(VerificationError, match="trusted as publisher, not server"):
        resolve_trusted(str(SIGNED), trust, role="server")


def test_plain_reader_refuses_a_signed_file_and_says_how_to_verify_it():
    with pytest.raises(RecipeError, match="fedseed recipe verify"):
        read_recipe_file(SIGNED)
