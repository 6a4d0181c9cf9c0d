"""Certificates, SuperNode keys and `flwr` connections for a deployment."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from fedseed.deploy import (
    add_connection,
    generate_supernode_key,
    generate_tls,
    make_connection,
    server_hosts,
    supernode_fingerprint,
)
from fedseed.errors import OutputError, SignatureError


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _server_verifier(ca_cert_path, host: str):
    import ipaddress

    from cryptography import x509
    from cryptography.x509.verification import DNSName, IPAddress, PolicyBuilder, Store

    ca = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
    subject: DNSName | IPAddress
    try:
        subject = IPAddress(ipaddress.ip_address(host))
    except ValueError:
        subject = DNSName(host)
    return PolicyBuilder().store(Store([ca])).build_server_verifier(subject)


def test_server_certificate_chains_to_the_ca_for_loopback_and_extra_hosts(tmp_path):
    from cryptography import x509

    files = generate_tls(tmp_path / "certs", ["coordinator.example.org", "10.0.0.5"])

    cert = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    for host in ("127.0.0.1", "localhost", "coordinator.example.org", "10.0.0.5"):
        _server_verifier(files.ca_cert, host).verify(cert, [])
    assert files.hosts == ("127.0.0.1", "localhost", "coordinator.example.org", "10.0.0.5")


def test_server_certificate_is_refused_for_a_name_it_does_not_carry(tmp_path):
    from cryptography import x509
    from cryptography.x509.verification import VerificationError

    files = generate_tls(tmp_path / "certs")
    cert = x509.load_pem_x509_certificate(files.server_cert.read_bytes())

    with pytest.raises(VerificationError):
        _server_verifier(files.ca_cert, "elsewhere.example.org").verify(cert, [])


def test_server_certificate_is_refused_under_another_ca(tmp_path):
    from cryptography import x509
    from cryptography.x509.verification import VerificationError

    files = generate_tls(tmp_path / "a")
    other = generate_tls(tmp_path / "b")
    cert = x509.load_pem_x509_certificate(files.server_cert.read_bytes())

    with pytest.raises(VerificationError):
        _server_verifier(other.ca_cert, "127.0.0.1").verify(cert, [])


def test_private_keys_are_private_and_certificates_public(tmp_path):
    files = generate_tls(tmp_path / "certs")

    assert _mode(files.ca_key) == _mode(files.server_key) == 0o600
    assert _mode(files.server_cert) & 0o044 == _mode(files.ca_cert) & 0o044 == 0o044
    assert _mode(tmp_path / "certs") == 0o700
    assert not [p for p in (tmp_path / "certs").iterdir() if p.name.startswith(".")]


def test_existing_certificates_are_kept_unless_forced(tmp_path):
    first = generate_tls(tmp_path / "certs")
    before = first.ca_cert.read_bytes()

    with pytest.raises(OutputError, match="exists"):
        generate_tls(tmp_path / "certs")
    assert first.ca_cert.read_bytes() == before
    generate_tls(tmp_path / "certs", overwrite=True)
    assert first.ca_cert.read_bytes() != before


@pytest.mark.parametrize("host", ["not a host", "-bad.example", "a..b", ""])
def test_malformed_host_is_refused(host):
    with pytest.raises(OutputError, match="neither an IP address nor a DNS name"):
        server_hosts([host])


def test_hosts_are_deduplicated_after_loopback():
    assert server_hosts(["LOCALHOST", "node.example.org", "::1"]) == (
        "127.0.0.1", "localhost", "node.example.org", "::1")


def test_supernode_key_is_openssh_ecdsa_p384_and_private(tmp_path):
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import (
        load_ssh_private_key,
        load_ssh_public_key,
    )

    files = generate_supernode_key("device-1", tmp_path / "auth")

    private = load_ssh_private_key(files.private_key.read_bytes(), None)
    public = load_ssh_public_key(files.public_key.read_bytes())
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    assert isinstance(private.curve, ec.SECP384R1)
    assert private.public_key().public_numbers() == public.public_numbers()  # type: ignore[union-attr]
    assert files.private_key.read_bytes().startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----")
    assert files.public_key.read_bytes().startswith(b"ecdsa-sha2-nistp384 ")
    assert files.public_key.read_bytes().endswith(b" device-1\n")
    assert _mode(files.private_key) == 0o600


def test_supernode_key_is_what_flower_loads_on_both_sides(tmp_path):
    from flwr.cli.supernode.register import try_load_public_key
    from flwr.supercore.primitives.asymmetric import public_key_to_bytes

    files = generate_supernode_key("device-1", tmp_path)
    from cryptography.hazmat.primitives.serialization import load_ssh_private_key

    private = load_ssh_private_key(files.private_key.read_bytes(), None)

    # `flwr supernode register` reads the .pub; the SuperNode signs with the private key
    assert try_load_public_key(files.public_key) == public_key_to_bytes(
        private.public_key())  # type: ignore[arg-type]


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen")
def test_supernode_key_fingerprint_is_what_ssh_keygen_prints(tmp_path):
    files = generate_supernode_key("device-1", tmp_path)

    done = subprocess.run(["ssh-keygen", "-lf", str(files.public_key)], capture_output=True,
                          text=True, check=True)
    derived = subprocess.run(["ssh-keygen", "-y", "-f", str(files.private_key)],
                             capture_output=True, text=True, check=True)
    assert done.stdout.split()[:2] == ["384", files.fingerprint]
    assert derived.stdout.split()[:2] == files.public_key.read_text().split()[:2]


def test_existing_supernode_key_is_never_overwritten(tmp_path):
    files = generate_supernode_key("device-1", tmp_path)
    before = files.private_key.read_bytes()

    with pytest.raises(OutputError, match="exists"):
        generate_supernode_key("device-1", tmp_path)
    assert files.private_key.read_bytes() == before


@pytest.mark.parametrize("name", ["../escape", "a b", "key.pub", ""])
def test_bad_supernode_key_name_is_refused(tmp_path, name):
    with pytest.raises(SignatureError, match="key name"):
        generate_supernode_key(name, tmp_path)


def test_fingerprint_refuses_what_is_not_an_ecdsa_openssh_key():
    with pytest.raises(SignatureError, match="not an OpenSSH public key"):
        supernode_fingerprint(b"-----BEGIN PUBLIC KEY-----\n")


def test_connection_is_appended_and_existing_ones_are_kept(tmp_path):
    files = generate_tls(tmp_path / "certs")
    config = tmp_path / "flwr" / "config.toml"
    config.parent.mkdir()
    config.write_text('[superlink]\ndefault = "local"\n\n[superlink.local]\naddress = ":local:"')

    add_connection(make_connection("prod", "coordinator.example.org:9093", files.ca_cert),
                   config)

    parsed = tomllib.loads(config.read_text())
    assert parsed["superlink"]["local"] == {"address": ":local:"}
    assert parsed["superlink"]["prod"] == {"address": "coordinator.example.org:9093",
                                           "root-certificates": str(files.ca_cert.resolve())}


def test_connection_is_never_redefined(tmp_path):
    files = generate_tls(tmp_path / "certs")
    config = tmp_path / "config.toml"
    add_connection(make_connection("prod", "127.0.0.1:9093", files.ca_cert), config)
    before = config.read_text()

    with pytest.raises(OutputError, match="exists already"):
        add_connection(make_connection("prod", "127.0.0.1:9094", files.ca_cert), config)
    assert config.read_text() == before


@pytest.mark.parametrize(("name", "address", "message"), [
    ("prod", "https://127.0.0.1:9093", "HOST:PORT"),
    ("prod", "127.0.0.1", "HOST:PORT"),
    ("my.conn", "127.0.0.1:9093", "connection name"),
])
def test_malformed_connection_is_refused(tmp_path, name, address, message):
    files = generate_tls(tmp_path / "certs")

    with pytest.raises(OutputError, match=message):
        make_connection(name, address, files.ca_cert)


def test_connection_needs_an_existing_ca_file(tmp_path):
    with pytest.raises(OutputError, match="no such CA certificate"):
        make_connection("prod", "127.0.0.1:9093", tmp_path / "missing.crt")


def test_cli_writes_certificates_and_a_supernode_key(fedseed, tmp_path):
    certs = fedseed("deploy", "certs", "--out", "certs", "--host", "node.example.org")
    key = fedseed("deploy", "supernode-key", "device-1", "--out", "auth")
    again = fedseed("deploy", "certs", "--out", "certs")

    assert certs.code == 0, certs.err
    assert "node.example.org" in certs.out and "server.key" in certs.out
    assert key.code == 0, key.err
    assert "flwr supernode register" in key.out and "SHA256:" in key.out
    assert sorted(p.name for p in (tmp_path / "certs").iterdir()) == [
        "ca.crt", "ca.key", "server.key", "server.pem"]
    assert sorted(p.name for p in (tmp_path / "auth").iterdir()) == ["device-1", "device-1.pub"]
    assert again.code == 2 and "--force" in again.err


def test_cli_prints_or_adds_a_connection(fedseed, tmp_path, monkeypatch):
    monkeypatch.setenv("FLWR_HOME", str(tmp_path / "flwr"))
    generate_tls(tmp_path / "certs")

    shown = fedseed("deploy", "connection", "prod", "--address", "127.0.0.1:9093",
                    "--root-certificates", "certs/ca.crt")
    added = fedseed("deploy", "connection", "prod", "--address", "127.0.0.1:9093",
                    "--root-certificates", "certs/ca.crt", "--write")
    twice = fedseed("deploy", "connection", "prod", "--address", "127.0.0.1:9093",
                    "--root-certificates", "certs/ca.crt", "--write")

    assert shown.code == 0, shown.err
    assert tomllib.loads(shown.out)["superlink"]["prod"]["address"] == "127.0.0.1:9093"
    assert added.code == 0, added.err
    assert "prod" in tomllib.loads((tmp_path / "flwr" / "config.toml").read_text())["superlink"]
    assert twice.code == 2 and "exists already" in twice.err
