"""Publishing and pulling recipes: validation, signing, verification, storage.

The one place that decides what a registry accepts. Both the CLI (embedded registry)
and the HTTP server call :func:`accept_envelope`, so the rules are the same either way:
a valid recipe, signed by a key trusted as ``publisher`` and not revoked; only
signatures that verify are kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from fedseed.errors import VerificationError
from fedseed.provenance.envelope import Envelope, verify_signatures
from fedseed.provenance.trust import TrustStore
from fedseed.provenance.verify import VerifiedRecipe, verify_envelope
from fedseed.registry.store import DEFAULT_TAG, Entry, LocalRegistry, check_name, check_tag


@dataclass(frozen=True)
class Published:
    """What a publish stored."""

    entry: Entry
    verified: VerifiedRecipe


def accept_envelope(registry: LocalRegistry, envelope: Envelope, trust: TrustStore, *,
                    name: str | None = None, tag: str | None = DEFAULT_TAG,
                    source: str = "envelope") -> Published:
    """Verify ``envelope`` for the publisher role and store it; idempotent.

    The stored name defaults to the recipe's own ``name``. Signatures that do not
    verify under ``trust`` are dropped before storing, so the registry never stores a
    signature that fails to verify (a signature by a key revoked later stays: it
    still verifies, and verifiers report the revocation).
    """
    if name is not None:
        check_name(name)
    if tag is not None:
        check_tag(tag)
    verified = verify_envelope(envelope, trust, role="publisher", source=source)
    keep = set(verify_signatures(envelope, trust.public_keys(None)))
    clean = Envelope(payload=envelope.payload, payload_type=envelope.payload_type,
                     signatures=tuple(s for s in envelope.signatures if s.keyid in keep))
    revoked = frozenset(k.keyid for k in trust.keys if k.revoked is not None)
    entry = registry.store(clean, verified.digest, name or verified.recipe.name,
                           publisher=verified.keyids[0], tag=tag, movable_from=revoked)
    return Published(entry=entry, verified=verified)


def pull_verified(registry: LocalRegistry, ref: str, trust: TrustStore,
                  role: str | None = None) -> VerifiedRecipe:
    """Fetch ``ref`` and verify it under ``trust``; the digest must match the ref."""
    envelope = registry.fetch(ref)
    verified = verify_envelope(envelope, trust, role=role, source=ref)
    if ref.startswith("sha256:") and verified.digest != ref:
        raise VerificationError(f"{ref}: registry returned a recipe with digest "
                                f"{verified.digest}")
    return verified


__all__ = ["Published", "accept_envelope", "pull_verified"]
