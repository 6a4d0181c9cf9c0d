"""The server's identity from ``$FEDSEED_HOME`` (or another folder): its signing key
and the trust store, read once, at the edge (the ServerApp, ``fedseed simulate``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fedseed.errors import SignatureError
from fedseed.provenance.keys import generate_key, key_id, load_private_key, public_pem
from fedseed.provenance.trust import TrustStore, load_trust, save_trust

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def server_identity(name: str = "server", *, home: Path | None = None,
                    create: bool = False) -> tuple[Ed25519PrivateKey, TrustStore]:
    """The key called ``name`` and the trust store of ``home``.

    ``create`` (simulations, where the simulated devices share ``home``): make the key
    on first use and trust it for the ``server`` role there. Otherwise the key must
    exist and be trusted already, or devices would refuse every meta-recipe: that is
    said now, with the commands that fix it.
    """
    try:
        key, _ = load_private_key(name, home)
    except SignatureError:
        if not create:
            raise
        generate_key(name, home)
        key, _ = load_private_key(name, home)
    trust = load_trust(home)
    if create:
        trust, _ = trust.add(public_pem(key.public_key()), "server", name)
        save_trust(trust, home)
    elif key_id(key.public_key()) not in trust.public_keys("server"):
        raise SignatureError(
            f"server key '{name}' is not trusted as server in this trust store; run "
            f"`fedseed keys export {name} > server.pub && fedseed trust add server.pub "
            "--role server` (and give server.pub to the devices)")
    return key, trust


__all__ = ["server_identity"]
