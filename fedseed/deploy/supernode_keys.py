"""SuperNode authentication keys: one ECDSA P-384 key pair per device, in OpenSSH format.

With ``flower-superlink --enable-supernode-auth`` only SuperNodes whose public key was
registered (``flwr supernode register NAME.pub CONNECTION``) may connect; each request
is signed with the private key (``flower-supernode --auth-supernode-private-key
NAME``), which never leaves the device. The files are what
``ssh-keygen -t ecdsa -b 384 -f NAME`` makes: an unencrypted ``OPENSSH PRIVATE KEY``
(the SuperNode reads it without a passphrase) and an ``ecdsa-sha2-nistp384`` line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from fedseed.deploy._files import prepare_outputs, write_output
from fedseed.errors import SignatureError

_KEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class SuperNodeKeyFiles:
    """Where :func:`generate_supernode_key` wrote a SuperNode key pair."""

    private_key: Path
    public_key: Path
    fingerprint: str


def make_supernode_keypair(comment: str = "") -> tuple[bytes, bytes]:
    """A SuperNode authentication key pair, as ``ssh-keygen -t ecdsa -b 384`` makes it.

    Parameters
    ----------
    comment : str
        Appended to the public key line (ssh-keygen puts ``user@host`` there).

    Returns
    -------
    tuple[bytes, bytes]
        The private key (``-----BEGIN OPENSSH PRIVATE KEY-----``, unencrypted: the
        SuperNode reads it without a passphrase) and the public key line
        (``ecdsa-sha2-nistp384 AAAA... comment``), newline-terminated.
    """
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
        PublicFormat,
    )

    if any(c in comment for c in "\r\n"):
        raise SignatureError("a SuperNode key comment must be one line")
    key = ec.generate_private_key(ec.SECP384R1())
    private = key.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption())
    public = key.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH)
    return private, public + (f" {comment}".encode() if comment else b"") + b"\n"


def supernode_fingerprint(public_line: bytes) -> str:
    """``SHA256:<base64>`` of an OpenSSH public key, as ``ssh-keygen -lf`` prints it.

    Raises
    ------
    SignatureError
        The line is not an OpenSSH ECDSA public key.
    """
    import base64
    import binascii
    import hashlib

    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_ssh_public_key

    try:
        key = load_ssh_public_key(public_line)
        blob = base64.b64decode(public_line.split()[1], validate=True)
    except (ValueError, IndexError, UnsupportedAlgorithm, binascii.Error) as e:
        raise SignatureError("SuperNode public key: not an OpenSSH public key line") from e
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise SignatureError("SuperNode public key: not an ECDSA key")
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def generate_supernode_key(name: str, out: Path, *, overwrite: bool = False
                           ) -> SuperNodeKeyFiles:
    """Write a SuperNode key pair as ``out/NAME`` (private) and ``out/NAME.pub``.

    Parameters
    ----------
    name : str
        File name of the private key: letters, digits, ``.``, ``_``, ``-``.
    out : Path
        Folder to write into; made (mode 0700) if missing.
    overwrite : bool
        Replace an existing pair instead of refusing.

    Returns
    -------
    SuperNodeKeyFiles
        The paths written and the public key's fingerprint.

    Raises
    ------
    OutputError
        A file exists and ``overwrite`` is not set, or ``out`` cannot be made.
    SignatureError
        ``name`` is not a valid key name.
    """
    if not _KEY_NAME.match(name) or name.endswith(".pub"):
        raise SignatureError(f"key name '{name}' must be 1-64 letters, digits, '.', '_' "
                             "or '-', not ending in .pub")
    private_path, public_path = out / name, out / f"{name}.pub"
    prepare_outputs(out, [private_path, public_path], overwrite)
    private, public = make_supernode_keypair(comment=name)
    write_output(private_path, private, private=True)
    write_output(public_path, public)
    return SuperNodeKeyFiles(private_path, public_path, supernode_fingerprint(public))


__all__ = ["SuperNodeKeyFiles", "generate_supernode_key", "make_supernode_keypair",
           "supernode_fingerprint"]
