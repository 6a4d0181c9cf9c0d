"""TLS certificates for a Flower deployment.

For local use and pilots: a self-signed certificate authority (CA) and a SuperLink
server certificate it signs. Production deployments can take the server certificate
from their own CA instead.

- The CA (``ca.crt``) is what every SuperNode and ``flwr`` CLI is given to check the
  SuperLink's identity (``--root-certificates``, connection ``root-certificates``).
  Its private key (``ca.key``) only issues certificates: keep it offline.
- The server certificate (``server.pem``, key ``server.key``) carries the SuperLink's
  names as subject alternative names (RFC 5280, section 4.2.1.6). ``127.0.0.1`` and
  ``localhost`` are always included: the SuperLink's own SuperExec reaches the
  Runtime API on the loopback address with the same certificate.

SuperNode authentication keys are made by :mod:`fedseed.deploy.supernode_keys`
(re-exported here).

Every private key is written with mode 0600, atomically; nothing is overwritten
unless asked.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fedseed.deploy._files import prepare_outputs, write_output
from fedseed.deploy.supernode_keys import (  # re-exported: one module for all key material
    SuperNodeKeyFiles,
    generate_supernode_key,
    make_supernode_keypair,
    supernode_fingerprint,
)
from fedseed.errors import OutputError

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey

#: Names always on the server certificate (the SuperExec dials the loopback address).
LOOPBACK_HOSTS: tuple[str, ...] = ("127.0.0.1", "localhost")
#: File names inside the ``--out`` folder of :func:`generate_tls`.
CA_CERT, CA_KEY, SERVER_CERT, SERVER_KEY = "ca.crt", "ca.key", "server.pem", "server.key"

_DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


@dataclass(frozen=True)
class TlsFiles:
    """Where :func:`generate_tls` wrote the CA and the SuperLink certificate."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    hosts: tuple[str, ...]


def server_hosts(extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The names a server certificate covers: loopback first, then ``extra``.

    Parameters
    ----------
    extra : Iterable[str]
        Further host names or IP addresses the SuperLink is reached at.

    Returns
    -------
    tuple[str, ...]
        Validated, de-duplicated names, in order.
    """
    out: list[str] = []
    for host in [*LOOPBACK_HOSTS, *extra]:
        name = _check_host(host.strip())
        if name not in out:
            out.append(name)
    return tuple(out)


def _check_host(host: str) -> str:
    """An IP address or a DNS name (``*.`` wildcard allowed); :class:`OutputError` else."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    labels = host.lower().rstrip(".").split(".")
    if labels and labels[0] == "*":
        labels = labels[1:]
    if not host or len(host) > 253 or not labels or not all(map(_DNS_LABEL.match, labels)):
        raise OutputError(f"host '{host}' is neither an IP address nor a DNS name; "
                          "give e.g. --host coordinator.example.org or --host 10.0.0.5")
    return host.lower().rstrip(".")


def _subject_alt_names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    from cryptography import x509

    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _name(common_name: str) -> x509.Name:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fedseed"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _validity(days: int) -> tuple[dt.datetime, dt.datetime]:
    if not 1 <= days <= 3650:
        raise OutputError(f"validity of {days} days is out of range; give 1..3650")
    now = dt.datetime.now(dt.timezone.utc)
    # A minute of slack for peers whose clocks run a little behind.
    return now - dt.timedelta(minutes=1), now + dt.timedelta(days=days)


def make_ca(common_name: str = "fedseed local CA", days: int = 365
            ) -> tuple[EllipticCurvePrivateKey, x509.Certificate]:
    """A self-signed certificate authority that may sign server certificates only.

    Parameters
    ----------
    common_name : str
        Subject common name of the CA.
    days : int
        Validity in days (1..3650).

    Returns
    -------
    tuple[EllipticCurvePrivateKey, x509.Certificate]
        The CA's private key (ECDSA P-256) and its certificate.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    start, end = _validity(days)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name)).issuer_name(_name(common_name))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True,
            crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_server_certificate(ca_key: EllipticCurvePrivateKey, ca_cert: x509.Certificate,
                            hosts: Sequence[str], days: int = 365
                            ) -> tuple[EllipticCurvePrivateKey, x509.Certificate]:
    """A TLS server certificate for ``hosts``, signed by the CA.

    Parameters
    ----------
    ca_key, ca_cert : EllipticCurvePrivateKey, x509.Certificate
        The issuing CA (from :func:`make_ca`).
    hosts : Sequence[str]
        Names and IP addresses for the subject alternative name; the first one is
        also the subject common name.
    days : int
        Validity in days (1..3650).

    Returns
    -------
    tuple[EllipticCurvePrivateKey, x509.Certificate]
        The server's private key (ECDSA P-256) and its certificate.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    if not hosts:
        raise OutputError("a server certificate needs at least one host name")
    key = ec.generate_private_key(ec.SECP256R1())
    start, end = _validity(days)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0])).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False,
            crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .add_extension(x509.SubjectAlternativeName(_subject_alt_names(hosts)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def generate_tls(out: Path, hosts: Iterable[str] = (), *, days: int = 365,
                 overwrite: bool = False) -> TlsFiles:
    """Write a new CA and a SuperLink certificate for ``hosts`` into ``out``.

    Parameters
    ----------
    out : Path
        Folder to write ``ca.crt``, ``ca.key``, ``server.pem`` and ``server.key``
        into; made (mode 0700) if missing.
    hosts : Iterable[str]
        Extra names or IP addresses of the SuperLink, besides 127.0.0.1 and localhost.
    days : int
        Validity of both certificates in days (1..3650).
    overwrite : bool
        Replace existing files instead of refusing.

    Returns
    -------
    TlsFiles
        The paths written and the names the server certificate covers.

    Raises
    ------
    OutputError
        A host is malformed, or a file exists and ``overwrite`` is not set.
    """
    from cryptography.hazmat.primitives.serialization import Encoding

    names = server_hosts(hosts)
    files = TlsFiles(out / CA_CERT, out / CA_KEY, out / SERVER_CERT, out / SERVER_KEY, names)
    prepare_outputs(out, [files.ca_cert, files.ca_key, files.server_cert, files.server_key],
                    overwrite)
    ca_key, ca_cert = make_ca(days=days)
    server_key, server_cert = make_server_certificate(ca_key, ca_cert, names, days)
    write_output(files.ca_key, _pkcs8_pem(ca_key), private=True)
    write_output(files.server_key, _pkcs8_pem(server_key), private=True)
    write_output(files.ca_cert, ca_cert.public_bytes(Encoding.PEM))
    write_output(files.server_cert, server_cert.public_bytes(Encoding.PEM))
    return files


def _pkcs8_pem(key: EllipticCurvePrivateKey) -> bytes:
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


__all__ = [
    "CA_CERT",
    "CA_KEY",
    "LOOPBACK_HOSTS",
    "SERVER_CERT",
    "SERVER_KEY",
    "SuperNodeKeyFiles",
    "TlsFiles",
    "generate_supernode_key",
    "generate_tls",
    "make_ca",
    "make_server_certificate",
    "make_supernode_keypair",
    "server_hosts",
    "supernode_fingerprint",
]
