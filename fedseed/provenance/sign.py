"""Signing a recipe: the one place where a recipe becomes a signed DSSE envelope."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fedseed.provenance.envelope import Envelope, sign_envelope
from fedseed.provenance.keys import key_id
from fedseed.recipe.codec import canonical_bytes
from fedseed.recipe.model import Recipe

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def sign_recipe(recipe: Recipe, key: Ed25519PrivateKey, keyid: str | None = None) -> Envelope:
    """A DSSE envelope of ``recipe``'s canonical bytes, signed by ``key`` (``keyid``
    defaults to the key id of its public key)."""
    return sign_envelope(Envelope(payload=canonical_bytes(recipe)), key,
                         keyid or key_id(key.public_key()))


__all__ = ["sign_recipe"]
