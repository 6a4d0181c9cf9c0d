"""SuperLink connections of the ``flwr`` CLI: ``[superlink.NAME]`` in
``$FLWR_HOME/config.toml`` (default ``~/.flwr/config.toml``).

``flwr run . NAME``, ``flwr supernode register KEY NAME`` and ``flwr supernode list
NAME`` reach the SuperLink through such a connection. Over TLS it names the CA that
signed the SuperLink's certificate (``root-certificates``, an absolute path) instead
of ``insecure = true``. Flower itself has no command to add one; this module writes
the section and leaves the rest of the file as it is.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from fedseed._internal.atomic import atomic_write_bytes
from fedseed.errors import OutputError

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ADDRESS = re.compile(r"^\S+:\d{1,5}$")


@dataclass(frozen=True)
class Connection:
    """A named SuperLink connection over TLS."""

    name: str
    address: str
    root_certificates: Path

    def to_toml(self) -> str:
        """The ``[superlink.NAME]`` section, newline-terminated."""
        return (f"[superlink.{self.name}]\naddress = {_toml_string(self.address)}\n"
                f"root-certificates = {_toml_string(str(self.root_certificates))}\n")


def flwr_home() -> Path:
    """The ``flwr`` CLI's folder: ``$FLWR_HOME``, default ``~/.flwr``."""
    configured = os.environ.get("FLWR_HOME")
    return Path(configured).expanduser() if configured else Path.home() / ".flwr"


def make_connection(name: str, address: str, root_certificates: Path) -> Connection:
    """Check the parts of a connection and make the CA path absolute.

    Parameters
    ----------
    name : str
        Connection name: letters, digits, ``_``, ``-``.
    address : str
        The SuperLink as ``host:port`` (its ``--host``/``--port``), no URL prefix.
    root_certificates : Path
        The CA certificate that signed the SuperLink's certificate.

    Raises
    ------
    OutputError
        A part is malformed or the CA file does not exist.
    """
    if not _NAME.match(name):
        raise OutputError(f"connection name '{name}' must be 1-64 letters, digits, '_' or '-'")
    if not _ADDRESS.match(address) or "://" in address:
        raise OutputError(f"address '{address}' must be HOST:PORT, e.g. 127.0.0.1:9093")
    ca = root_certificates.expanduser().resolve()
    if not ca.is_file():
        raise OutputError(f"{root_certificates}: no such CA certificate file")
    return Connection(name, address, ca)


def add_connection(connection: Connection, config: Path | None = None) -> Path:
    """Append ``connection`` to the ``flwr`` config file; refuse to redefine one.

    Parameters
    ----------
    connection : Connection
        What to add (from :func:`make_connection`).
    config : Path | None
        The config file; default ``$FLWR_HOME/config.toml``. Made if missing (Flower
        then adds no default ``local`` connection to it).

    Returns
    -------
    Path
        The config file written.
    """
    path = config or flwr_home() / "config.toml"
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{path}: cannot read or make it ({e.strerror})") from e
    header = re.compile(rf"^\s*\[\s*superlink\s*\.\s*\"?{re.escape(connection.name)}\"?\s*\]",
                        re.MULTILINE)
    if header.search(text):
        raise OutputError(f"{path}: connection '{connection.name}' exists already; edit it "
                          "there or choose another name")
    prefix = text if not text or text.endswith("\n") else text + "\n"
    atomic_write_bytes(path, (prefix + ("\n" if prefix else "") + connection.to_toml())
                       .encode("utf-8"))
    return path


def _toml_string(value: str) -> str:
    """A TOML basic string (JSON's escapes are a subset of TOML's)."""
    return json.dumps(value, ensure_ascii=False)


__all__ = ["Connection", "add_connection", "flwr_home", "make_connection"]
