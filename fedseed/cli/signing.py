"""``fedseed recipe sign|verify|publish|pull|lineage``: signed recipes and the registry."""

from __future__ import annotations

from pathlib import Path

import typer

from fedseed.cli._common import console
from fedseed.cli.recipe import app

REGISTRY_HELP = "Registry: a folder or http(s):// URL (default: $FEDSEED_HOME/registry)."


def _check_role(role: str | None) -> None:
    from fedseed.errors import SignatureError
    from fedseed.provenance.trust import ROLES

    if role is not None and role not in ROLES:
        raise SignatureError(f"--role '{role}' is not one of {', '.join(ROLES)}")


def _envelope_from_file(path: Path):
    """An envelope from FILE: as is if it is one, else a new unsigned one around the
    canonical bytes of the recipe it holds."""
    from fedseed.provenance.envelope import Envelope
    from fedseed.provenance.packed import read_envelope
    from fedseed.recipe.codec import (
        MAX_RECIPE_BYTES,
        canonical_bytes,
        looks_like_envelope,
        parse_recipe,
        read_recipe_file,
    )

    try:
        size = path.stat().st_size
        raw = path.read_bytes() if size <= MAX_RECIPE_BYTES else b""
    except OSError:
        raw = b""
    if raw and looks_like_envelope(raw):
        envelope = read_envelope(raw, str(path))
        parse_recipe(envelope.payload, f"{path} payload")  # must be a valid recipe
        return envelope
    return Envelope(payload=canonical_bytes(read_recipe_file(path)))


@app.command("sign")
def sign(
    file: Path = typer.Argument(..., help="Recipe JSON, or an envelope to co-sign."),
    key: str = typer.Option(..., help="Key name (see `fedseed keys list`)."),
    out: Path = typer.Option(..., "-o", "--out", help="Where to write the envelope."),
) -> None:
    """Sign a recipe into a DSSE envelope, or add a signature to an envelope."""
    from fedseed._internal.atomic import atomic_write_bytes
    from fedseed.provenance.envelope import sign_envelope
    from fedseed.provenance.keys import load_private_key
    from fedseed.recipe.codec import digest_bytes

    private, keyid = load_private_key(key)
    envelope = sign_envelope(_envelope_from_file(file), private, keyid)
    atomic_write_bytes(out, envelope.to_json())
    console.out(f"signed {digest_bytes(envelope.payload)} by {key} ({keyid[:16]}), "
                f"{len(envelope.signatures)} signature(s): {out}", highlight=False)


@app.command("pack")
def pack_cmd(
    file: Path = typer.Argument(..., help="Signed envelope (DSSE JSON or packed)."),
    out: Path = typer.Option(..., "-o", "--out", help="Where to write the other form."),
) -> None:
    """Convert a signed envelope between DSSE JSON and the packed wire form (the
    same signed bytes; docs/seed-trajectories.md). Prints both sizes."""
    from fedseed._internal.atomic import atomic_write_bytes
    from fedseed.errors import RecipeError
    from fedseed.provenance.packed import is_packed, pack, read_envelope
    from fedseed.recipe.codec import MAX_RECIPE_BYTES, parse_recipe

    try:
        size = file.stat().st_size
        if size > MAX_RECIPE_BYTES:
            raise RecipeError(f"{file}: {size} bytes is over the {MAX_RECIPE_BYTES}-byte "
                              "envelope limit")
        raw = file.read_bytes()
    except OSError as e:
        raise RecipeError(f"{file}: cannot read ({e.strerror})") from e
    envelope = read_envelope(raw, str(file))
    parse_recipe(envelope.payload, f"{file} payload")  # only recipes are packed here
    packed, as_json = pack(envelope), envelope.to_json()
    atomic_write_bytes(out, as_json if is_packed(raw) else packed)
    console.out(f"{out}: DSSE JSON {len(as_json):,} bytes, packed {len(packed):,} bytes "
                f"({len(as_json) / len(packed):.2f}x smaller)", highlight=False)


@app.command("verify")
def verify(
    ref: str = typer.Argument(..., help="Envelope file, or a registry ref with --chain."),
    role: str = typer.Option(None, help="Require a key trusted for this role."),
    chain: bool = typer.Option(False, help="Also verify every ancestor in the registry."),
    registry: str = typer.Option(None, help=REGISTRY_HELP),
) -> None:
    """Verify signatures under the trust store (exit 1 and the reason if they fail)."""
    from fedseed.errors import VerificationError
    from fedseed.provenance.packed import read_envelope
    from fedseed.provenance.trust import load_trust
    from fedseed.provenance.verify import verify_envelope
    from fedseed.registry.client import open_registry
    from fedseed.registry.lineage import lineage_tree, problems

    _check_role(role)
    trust = load_trust()
    path = Path(ref)
    if not path.exists() and ("/" in ref or ref.endswith(".json")):
        from fedseed.errors import RecipeError

        raise RecipeError(f"{ref}: no such file")
    if path.is_file():
        from fedseed.errors import SignatureError

        try:
            envelope = read_envelope(path.read_bytes(), str(path))
        except SignatureError as e:
            raise VerificationError(e.diagnostics()) from e
        verified = verify_envelope(envelope, trust, role=role, source=str(path))
    else:
        client = open_registry(registry, trust)
        verified = verify_envelope(client.fetch(ref), trust, role=role, source=ref)
        if ref.startswith("sha256:") and verified.digest != ref:
            raise VerificationError(f"{ref}: registry served different content "
                                    f"{verified.digest}")
    console.out(f"verified {verified.recipe.name} {verified.digest} signed by "
                + ", ".join(k[:16] for k in verified.keyids), highlight=False)
    if chain:
        # The recipe itself is verified above; walk its ancestors, which need not be
        # published where the file came from but must be in the registry.
        client = open_registry(registry, trust)
        lineage = verified.recipe.lineage
        issues = [issue for parent in (lineage.parents if lineage else [])
                  for issue in problems(lineage_tree(client, parent, trust))]
        if issues:
            raise VerificationError("lineage: " + "; ".join(issues))
        console.out("lineage: every ancestor verified", highlight=False)


@app.command("publish")
def publish(
    file: Path = typer.Argument(..., help="Recipe JSON or signed envelope."),
    key: str = typer.Option(None, help="Key to sign with if the file is unsigned."),
    name: str = typer.Option(None, help="Registry name (default: the recipe's name)."),
    tag: str = typer.Option("latest", help="Tag to point at this recipe."),
    registry: str = typer.Option(None, help=REGISTRY_HELP),
) -> None:
    """Validate, sign if unsigned, verify and store a recipe; print its digest."""
    from fedseed.errors import SignatureError
    from fedseed.provenance.envelope import sign_envelope
    from fedseed.provenance.keys import load_private_key, public_pem
    from fedseed.provenance.trust import load_trust
    from fedseed.registry.client import open_registry

    envelope = _envelope_from_file(file)
    trust = load_trust()
    if key is not None:
        private, keyid = load_private_key(key)
        if not any(s.keyid == keyid for s in envelope.signatures):
            envelope = sign_envelope(envelope, private, keyid)
        # Your own key is a trusted publisher of your own embedded registry.
        trust, _ = trust.add(public_pem(private.public_key()), "publisher", key)
    elif not envelope.signatures:
        raise SignatureError(f"{file}: unsigned; pass --key NAME to sign it")
    entry = open_registry(registry, trust).publish(envelope, name=name, tag=tag)
    console.out(entry.digest, highlight=False)


@app.command("pull")
def pull(
    ref: str = typer.Argument(..., help="NAME[:TAG] or sha256:DIGEST."),
    out: Path = typer.Option(..., "-o", "--out", help="Where to write the envelope."),
    role: str = typer.Option(None, help="Require a key trusted for this role."),
    registry: str = typer.Option(None, help=REGISTRY_HELP),
) -> None:
    """Fetch a recipe, verify it under the trust store, then write it."""
    from fedseed._internal.atomic import atomic_write_bytes
    from fedseed.errors import VerificationError
    from fedseed.provenance.trust import load_trust
    from fedseed.provenance.verify import verify_envelope
    from fedseed.registry.client import open_registry

    _check_role(role)
    trust = load_trust()
    envelope = open_registry(registry, trust).fetch(ref)
    verified = verify_envelope(envelope, trust, role=role, source=ref)
    if ref.startswith("sha256:") and verified.digest != ref:
        raise VerificationError(f"{ref}: registry served different content {verified.digest}")
    atomic_write_bytes(out, envelope.to_json())
    console.out(f"{verified.digest} {verified.recipe.name} -> {out}", highlight=False)


@app.command("lineage")
def lineage(
    ref: str = typer.Argument(..., help="NAME[:TAG] or sha256:DIGEST."),
    registry: str = typer.Option(None, help=REGISTRY_HELP),
) -> None:
    """Print the derivation tree: digest, name, producer key, round, method."""
    from rich.tree import Tree

    from fedseed.provenance.trust import load_trust
    from fedseed.registry.client import open_registry
    from fedseed.registry.lineage import LineageNode, lineage_tree, problems

    trust = load_trust()
    client = open_registry(registry, trust)
    client.fetch(ref)  # an unknown ref is bad input (exit 2), not a broken lineage
    root = lineage_tree(client, ref, trust)

    def label(node: LineageNode) -> str:
        if node.problem is not None:
            return f"[red]{node.digest[:19]}  {node.problem}[/red]"
        r = node.recipe
        assert r is not None
        lin = r.lineage
        where = f"round {lin.round}, {lin.method}" if lin else "root"
        if lin is not None and lin.producer:
            where += f", producer {lin.producer[:12]}"
        if r.init.base is not None:
            where += f", base {r.init.base[:19]}"
        again = " (shown above)" if node.seen_before else ""
        signer = ", ".join(k[:12] for k in node.keyids) or "-"
        return f"{node.digest[:19]}  {r.name}  signed by {signer}  {where}{again}"

    def build(tree: Tree, node: LineageNode) -> None:
        for parent in node.parents:
            build(tree.add(label(parent)), parent)

    tree = Tree(label(root))
    build(tree, root)
    console.print(tree)
    found = problems(root)
    if found:
        from fedseed.errors import VerificationError

        raise VerificationError(f"lineage of {ref}: {len(found)} problem(s): " + "; ".join(found))
