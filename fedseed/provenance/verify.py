"""Verifying a signed recipe: signature, trust, role, revocation, recipe validity.

:func:`verify_envelope` hands back the recipe parsed from the exact signed bytes,
and only after a signature by a trusted, unrevoked key of the asked role verified.
When nothing verifies, the error says why, most specific reason first.
"""

from __future__ import annotations

from dataclasses import dataclass

from fedseed.errors import RecipeError, VerificationError
from fedseed.provenance.envelope import PAYLOAD_TYPE, Envelope, verify_signatures
from fedseed.provenance.trust import TrustStore
from fedseed.recipe.codec import digest_bytes, parse_recipe
from fedseed.recipe.model import Recipe


@dataclass(frozen=True)
class VerifiedRecipe:
    """A recipe whose envelope verified, with the key ids that verified it."""

    recipe: Recipe
    digest: str
    keyids: tuple[str, ...]
    envelope: Envelope


def verify_envelope(envelope: Envelope, trust: TrustStore, role: str | None = None,
                    source: str = "envelope") -> VerifiedRecipe:
    """Verify ``envelope`` under ``trust`` for ``role`` (any role if ``None``)."""
    if envelope.payload_type != PAYLOAD_TYPE:
        raise VerificationError(f"{source}: payloadType '{envelope.payload_type}' is not "
                                f"{PAYLOAD_TYPE}", "payload-type")
    if not envelope.signatures:
        raise VerificationError(f"{source}: unsigned envelope", "unsigned")
    verified = verify_signatures(envelope, trust.public_keys(role))
    if not verified:
        reason, message = _why_not(envelope, trust, role)
        raise VerificationError(f"{source}: {message}", reason)
    try:
        recipe = parse_recipe(envelope.payload, f"{source} payload")
    except RecipeError as e:
        raise VerificationError(f"{source}: signature verified but the payload is not a valid "
                                f"recipe: {e.diagnostics()}", "invalid-recipe") from e
    return VerifiedRecipe(recipe=recipe, digest=digest_bytes(envelope.payload),
                          keyids=tuple(verified), envelope=envelope)


def _why_not(envelope: Envelope, trust: TrustStore, role: str | None) -> tuple[str, str]:
    """The most specific reason no signature verified: (code, message)."""
    any_role = verify_signatures(envelope, trust.public_keys(None))
    reasons = []
    for signature in envelope.signatures:
        entry = trust.get(signature.keyid)
        short = signature.keyid[:16] or "(no keyid)"
        if entry is None:
            reasons.append((3, "unknown-key",
                            f"signed by unknown key {short}; add it with `fedseed trust add`"))
        elif entry.revoked is not None:
            reasons.append((1, "revoked", f"signed by revoked key {short} ({entry.name}, "
                                          f"revoked {entry.revoked})"))
        elif signature.keyid in any_role:
            reasons.append((2, "wrong-role", f"key {short} ({entry.name}) is trusted as "
                                             f"{', '.join(entry.roles)}, not {role}"))
        else:
            reasons.append((0, "bad-signature",
                            f"signature by {short} ({entry.name}) does not verify: the "
                            "payload was tampered with or the signature is corrupt"))
    _, code, message = min(reasons)
    return code, message
