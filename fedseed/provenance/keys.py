"""Ed25519 signing keys under ``$FEDSEED_HOME/keys``.

The private key is PKCS#8 PEM, mode 0600, never logged; the public key is
SubjectPublicKeyInfo PEM. A key id is the hex SHA-256 of the raw 32-byte public key.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fedseed._internal.atomic import atomic_path
from fedseed.errors import SignatureError
from fedseed.home import fedseed_home

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class KeyInfo:
    """A stored key: its name, key id and where it lives."""

    name: str
    keyid: str
    private_path: Path
    public_path: Path


def keys_dir(home: Path | None = None) -> Path:
    """The folder holding the signing keys."""
    return (home or fedseed_home()) / "keys"


def key_id(public: Ed25519PublicKey) -> str:
    """Hex SHA-256 of the raw 32-byte public key."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return hashlib.sha256(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()


def public_pem(public: Ed25519PublicKey) -> bytes:
    """SubjectPublicKeyInfo PEM of a public key."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def load_public_pem(data: bytes, source: str = "public key") -> Ed25519PublicKey:
    """Parse an Ed25519 public key from PEM; :class:`SignatureError` otherwise."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(data)
    except (ValueError, TypeError, UnicodeError) as e:
        raise SignatureError(f"{source}: not a PEM public key") from e
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureError(f"{source}: not an Ed25519 public key")
    return key


def check_name(name: str) -> str:
    """A key name: letters, digits, ``.``, ``_``, ``-``; at most 64 characters."""
    if not _NAME.match(name):
        raise SignatureError(f"key name '{name}' must be 1-64 letters, digits, '.', '_' or '-'")
    return name


def generate_key(name: str, home: Path | None = None) -> KeyInfo:
    """Make a new Ed25519 key pair called ``name``; refuse to overwrite one."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    folder = keys_dir(home)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    private_path = folder / f"{check_name(name)}.key"
    if private_path.exists():
        raise SignatureError(f"key '{name}' already exists at {private_path}; pick another name")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    public_path = folder / f"{name}.pub"
    with atomic_path(public_path) as tmp:
        tmp.write_bytes(public_pem(key.public_key()))
    with atomic_path(private_path, private=True) as tmp:
        tmp.write_bytes(pem)
    return KeyInfo(name, key_id(key.public_key()), private_path, public_path)


def load_private_key(name: str, home: Path | None = None) -> tuple[Ed25519PrivateKey, str]:
    """The private key called ``name`` and its key id."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    path = keys_dir(home) / f"{check_name(name)}.key"
    if not path.is_file():
        raise SignatureError(f"no key '{name}' in {path.parent}; run `fedseed keys generate "
                             f"{name}`")
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as e:
        raise SignatureError(f"{path}: not a readable private key") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError(f"{path}: not an Ed25519 private key")
    return key, key_id(key.public_key())


def list_keys(home: Path | None = None) -> list[KeyInfo]:
    """Every stored key, sorted by name."""
    folder = keys_dir(home)
    out = []
    for public_path in sorted(folder.glob("*.pub")) if folder.is_dir() else []:
        public = load_public_pem(public_path.read_bytes(), str(public_path))
        out.append(KeyInfo(public_path.stem, key_id(public),
                           folder / f"{public_path.stem}.key", public_path))
    return out


def export_public(name: str, home: Path | None = None) -> bytes:
    """PEM of the public half of key ``name``."""
    key, _ = load_private_key(name, home)
    return public_pem(key.public_key())


def private_key_is_private(path: Path) -> bool:
    """Whether a private key file is readable by its owner only."""
    return (os.stat(path).st_mode & 0o077) == 0
