"""``fedseed deploy ...``: TLS certificates, SuperNode keys and ``flwr`` connections for
a real deployment (see docs/deployment.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from fedseed.cli._common import console

app = typer.Typer(help="Certificates, SuperNode keys and connections for a deployment.",
                  no_args_is_help=True)


@app.command("certs")
def certs(
    out: Path = typer.Option(..., help="Folder for ca.crt, ca.key, server.pem, server.key."),
    host: list[str] = typer.Option(None, "--host", help="Another name or IP address of the "
                                   "SuperLink (repeatable); 127.0.0.1 and localhost are "
                                   "always included."),
    days: int = typer.Option(365, help="Validity in days."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing files."),
) -> None:
    """Make a local CA and a SuperLink TLS certificate signed by it."""
    from fedseed.deploy.certs import generate_tls

    files = generate_tls(out, host or (), days=days, overwrite=force)
    console.out(
        f"CA certificate:     {files.ca_cert}  (give to every SuperNode and flwr CLI)\n"
        f"CA private key:     {files.ca_key}  (secret; keep offline)\n"
        f"server certificate: {files.server_cert}  (for {', '.join(files.hosts)})\n"
        f"server private key: {files.server_key}  (secret; SuperLink only)", highlight=False)


@app.command("supernode-key")
def supernode_key(
    name: str = typer.Argument(..., help="Key file name, e.g. device-1."),
    out: Path = typer.Option(..., help="Folder to write NAME and NAME.pub into."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing pair."),
) -> None:
    """Make a SuperNode authentication key pair (ECDSA P-384, OpenSSH format)."""
    from fedseed.deploy.certs import generate_supernode_key

    files = generate_supernode_key(name, out, overwrite=force)
    console.out(
        f"private key: {files.private_key}  (secret; stays on the device: "
        f"flower-supernode --auth-supernode-private-key)\n"
        f"public key:  {files.public_key}  (register: flwr supernode register "
        f"{files.public_key} CONNECTION)\n"
        f"fingerprint: {files.fingerprint}", highlight=False)


@app.command("connection")
def connection(
    name: str = typer.Argument(..., help="Connection name, e.g. fedseed."),
    address: str = typer.Option(..., help="SuperLink HOST:PORT."),
    root_certificates: Path = typer.Option(..., help="CA certificate (ca.crt)."),
    write: bool = typer.Option(False, "--write", help="Append it to $FLWR_HOME/config.toml "
                               "instead of printing it."),
) -> None:
    """Print (or add) a TLS SuperLink connection for `flwr run . NAME`."""
    from fedseed.deploy.connection import add_connection, make_connection

    made = make_connection(name, address, root_certificates)
    if not write:
        console.out(made.to_toml().rstrip(), highlight=False)
        return
    path = add_connection(made)
    console.out(f"added connection {name} ({address}) to {path}", highlight=False)
