"""Deployment helpers: TLS certificates (:mod:`~fedseed.deploy.certs`), SuperNode
authentication keys (:mod:`~fedseed.deploy.supernode_keys`) and ``flwr`` CLI
connections (:mod:`~fedseed.deploy.connection`) for running fedseed on a real SuperLink
and SuperNodes.

See ``docs/deployment.md`` for the walk-through. Nothing here imports Flower.
"""

from __future__ import annotations

from fedseed.deploy.certs import (
    TlsFiles,
    generate_tls,
    make_ca,
    make_server_certificate,
    server_hosts,
)
from fedseed.deploy.connection import Connection, add_connection, flwr_home, make_connection
from fedseed.deploy.supernode_keys import (
    SuperNodeKeyFiles,
    generate_supernode_key,
    make_supernode_keypair,
    supernode_fingerprint,
)

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
