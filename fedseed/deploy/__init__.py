"""Deployment helpers: TLS certificates, SuperNode authentication keys and ``flwr``
CLI connections for running fedseed on a real SuperLink and SuperNodes.

See ``docs/deployment.md`` for the walk-through. Nothing here imports Flower.
"""

from __future__ import annotations

from fedseed.deploy.certs import (
    SuperNodeKeyFiles,
    TlsFiles,
    generate_supernode_key,
    generate_tls,
    make_ca,
    make_server_certificate,
    make_supernode_keypair,
    server_hosts,
    supernode_fingerprint,
)
from fedseed.deploy.connection import Connection, add_connection, flwr_home, make_connection

__all__ = [
    "Connection",
    "SuperNodeKeyFiles",
    "TlsFiles",
    "add_connection",
    "flwr_home",
    "generate_supernode_key",
    "generate_tls",
    "make_ca",
    "make_connection",
    "make_server_certificate",
    "make_supernode_keypair",
    "server_hosts",
    "supernode_fingerprint",
]
