"""Resolving a recipe reference that may be signed: a built-in name, a plain recipe
file, or a signed envelope (DSSE JSON or packed) that is used only once it verified.

A signed recipe says who vouches for it. Reading its payload without checking the
signature would make that claim decoration, so every entry point that *uses* a
recipe (``fedseed personalize``, ``fedseed assemble``, the ServerApp's ``recipe``
run config) resolves it here, with the trust store passed in by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fedseed.errors import RecipeError, SignatureError
from fedseed.provenance.packed import read_envelope
from fedseed.provenance.trust import TrustStore
from fedseed.provenance.verify import VerifiedRecipe, verify_envelope
from fedseed.recipe.builtin import resolve_recipe
from fedseed.recipe.codec import MAX_RECIPE_BYTES, looks_like_envelope
from fedseed.recipe.model import Recipe


@dataclass(frozen=True)
class ResolvedRecipe:
    """A recipe ready to use; ``verified`` is set when it came from a signed envelope."""

    recipe: Recipe
    verified: VerifiedRecipe | None = None


def signed_file(ref: str) -> bytes | None:
    """The bytes of ``ref`` if it names a file holding a signed envelope, else ``None``."""
    path = Path(ref)
    try:
        if not path.is_file() or path.stat().st_size > MAX_RECIPE_BYTES:
            return None  # resolve_recipe names what is wrong with it
        raw = path.read_bytes()
    except OSError:
        return None
    return raw if looks_like_envelope(raw) else None


def resolve_trusted(ref: str, trust: TrustStore, role: str | None = None) -> ResolvedRecipe:
    """The recipe ``ref`` names; a signed one only after it verified under ``trust``.

    Parameters
    ----------
    ref
        A built-in name, a recipe JSON file, or a signed envelope file.
    trust
        The trust store whose keys may vouch for a signed recipe.
    role
        The role the signer must hold (any trusted role when ``None``).

    Raises
    ------
    VerificationError
        The envelope's signature is not by a trusted, unrevoked key (exit code 1);
        the message says how to trust the signer.
    RecipeError
        The file is not a readable envelope or recipe (exit code 2).
    """
    raw = signed_file(ref)
    if raw is None:
        return ResolvedRecipe(resolve_recipe(ref))
    try:
        envelope = read_envelope(raw, ref)
    except SignatureError as e:
        raise RecipeError(e.diagnostics()) from e
    verified = verify_envelope(envelope, trust, role=role, source=ref)
    return ResolvedRecipe(verified.recipe, verified)
