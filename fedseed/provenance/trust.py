"""The trust store: which public keys a party accepts, in which role, and which
keys are revoked. Kept as JSON at ``$FEDSEED_HOME/trust.json``.

Roles say what a signature is accepted *for*: ``publisher`` (recipes in a
registry), ``server`` (meta-recipes a federation server sends), ``client`` (client
recipes a server aggregates). A key may hold several roles. Revocation is permanent:
a revoked key id cannot be added back, so a leaked key cannot be quietly re-trusted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

from fedseed._internal.atomic import atomic_write_bytes
from fedseed.errors import SignatureError
from fedseed.home import fedseed_home
from fedseed.provenance.keys import key_id, load_public_pem, public_pem

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

Role = Literal["publisher", "server", "client"]
ROLES: tuple[str, ...] = get_args(Role)


@dataclass(frozen=True)
class TrustedKey:
    """A key in the trust store."""

    keyid: str
    name: str
    roles: tuple[str, ...]
    public_pem: str
    added: str
    revoked: str | None = None


@dataclass(frozen=True)
class TrustStore:
    """An immutable view of the trust store; ``add``/``revoke`` return a new one."""

    keys: tuple[TrustedKey, ...] = ()

    def get(self, keyid: str) -> TrustedKey | None:
        """The entry for ``keyid``, revoked or not."""
        return next((k for k in self.keys if k.keyid == keyid), None)

    def public_keys(self, role: str | None = None) -> dict[str, Ed25519PublicKey]:
        """Unrevoked keys (of ``role``, if given), by key id."""
        return {k.keyid: load_public_pem(k.public_pem.encode(), f"trust entry {k.name}")
                for k in self.keys
                if k.revoked is None and (role is None or role in k.roles)}

    def add(self, pem: bytes, role: str, name: str | None = None) -> tuple[TrustStore, TrustedKey]:
        """Trust ``pem`` for ``role``; adding a role to a known key keeps its name."""
        if role not in ROLES:
            raise SignatureError(f"role '{role}' is not one of {', '.join(ROLES)}")
        public = load_public_pem(pem)
        kid = key_id(public)
        # Store the key as re-exported PEM, never the caller's bytes: a PEM loader
        # ignores text around the key block, and that text is not ours to keep.
        pem = public_pem(public)
        existing = self.get(kid)
        if existing is not None and existing.revoked is not None:
            raise SignatureError(f"key {kid[:16]} was revoked on {existing.revoked}; revocation "
                                 "is permanent, generate a new key")
        if existing is not None:
            entry = replace(existing, roles=tuple(sorted({*existing.roles, role})))
            keys = tuple(entry if k.keyid == kid else k for k in self.keys)
            return TrustStore(keys), entry
        entry = TrustedKey(keyid=kid, name=name or kid[:16], roles=(role,),
                           public_pem=pem.decode("ascii").strip() + "\n", added=_now())
        return TrustStore((*self.keys, entry)), entry

    def revoke(self, keyid: str) -> tuple[TrustStore, TrustedKey]:
        """Mark ``keyid`` (or a unique prefix of at least 8 hex digits) revoked."""
        matches = [k for k in self.keys if k.keyid.startswith(keyid)] if len(keyid) >= 8 else []
        if len(matches) != 1:
            raise SignatureError(f"key id '{keyid}' matches {len(matches)} trusted keys; give "
                                 "the full key id from `fedseed trust list`")
        entry = matches[0] if matches[0].revoked else replace(matches[0], revoked=_now())
        return TrustStore(tuple(entry if k.keyid == entry.keyid else k for k in self.keys)), entry


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def trust_path(home: Path | None = None) -> Path:
    """Where the trust store lives."""
    return (home or fedseed_home()) / "trust.json"


def load_trust(home: Path | None = None, path: Path | None = None) -> TrustStore:
    """Read the trust store (empty if there is none yet)."""
    path = path or trust_path(home)
    if not path.exists():
        return TrustStore()
    try:
        data = json.loads(path.read_bytes())
        return TrustStore(tuple(TrustedKey(**{**entry, "roles": tuple(entry["roles"])})
                                for entry in data["keys"]))
    except (ValueError, KeyError, TypeError) as e:
        raise SignatureError(f"{path}: trust store is corrupt ({e}); restore it from backup") from e


def save_trust(store: TrustStore, home: Path | None = None, path: Path | None = None) -> Path:
    """Write the trust store atomically."""
    path = path or trust_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"version": 1, "keys": [{**k.__dict__, "roles": list(k.roles)} for k in store.keys]}
    atomic_write_bytes(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())
    return path
