"""``fedseed keys ...`` and ``fedseed trust ...``: signing keys and the trust store."""

from __future__ import annotations

from pathlib import Path

import typer

from fedseed.cli._common import console

keys_app = typer.Typer(help="Make and list Ed25519 signing keys.", no_args_is_help=True)
trust_app = typer.Typer(help="Which public keys to trust, in which role.",
                        no_args_is_help=True)


@keys_app.command("generate")
def generate(name: str = typer.Argument(..., help="Key name, e.g. alice.")) -> None:
    """Make an Ed25519 key pair under $FEDSEED_HOME/keys (private key mode 0600)."""
    from fedseed.provenance.keys import generate_key

    info = generate_key(name)
    console.out(f"{info.name} {info.keyid}\nprivate key: {info.private_path}\n"
                f"public key:  {info.public_path}", highlight=False)


@keys_app.command("list")
def list_keys() -> None:
    """List stored keys with their key ids."""
    from fedseed.provenance.keys import list_keys as stored

    for info in stored():
        console.out(f"{info.name:24} {info.keyid}", highlight=False)


@keys_app.command("export")
def export(name: str = typer.Argument(..., help="Key name.")) -> None:
    """Print the public key (PEM) to share with those who should trust it."""
    from fedseed.provenance.keys import export_public

    console.out(export_public(name).decode().rstrip(), highlight=False)


@trust_app.command("add")
def add(
    pubkey: Path = typer.Argument(..., help="Public key PEM file (from `keys export`)."),
    role: str = typer.Option(..., help="publisher, server or client."),
    name: str = typer.Option(None, help="A name to show for this key."),
) -> None:
    """Trust a public key for a role."""
    from fedseed.errors import SignatureError
    from fedseed.provenance.trust import load_trust, save_trust

    try:
        pem = pubkey.read_bytes()
    except OSError as e:
        raise SignatureError(f"{pubkey}: cannot read public key ({e.strerror})") from e
    store, entry = load_trust().add(pem, role, name)
    save_trust(store)
    console.out(f"trusted {entry.name} {entry.keyid} as {', '.join(entry.roles)}",
                highlight=False)


@trust_app.command("list")
def list_trusted() -> None:
    """List trusted keys, their roles and revocation."""
    from rich.table import Table

    from fedseed.provenance.trust import load_trust

    table = Table()
    for column in ("name", "key id", "roles", "added", "revoked"):
        table.add_column(column, overflow="fold")
    for k in load_trust().keys:
        table.add_row(k.name, k.keyid, ", ".join(k.roles), k.added, k.revoked or "")
    console.print(table)


@trust_app.command("revoke")
def revoke(keyid: str = typer.Argument(..., help="Key id (or a unique 8+ digit prefix).")) -> None:
    """Revoke a key: its signatures stop verifying, permanently."""
    from fedseed.provenance.trust import load_trust, save_trust

    store, entry = load_trust().revoke(keyid)
    save_trust(store)
    console.out(f"revoked {entry.name} {entry.keyid} at {entry.revoked}", highlight=False)
