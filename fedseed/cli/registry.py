"""``fedseed registry serve``: the recipe registry over HTTP."""

from __future__ import annotations

from pathlib import Path

import typer

from fedseed.cli._common import console

app = typer.Typer(help="Serve the recipe registry over HTTP.", no_args_is_help=True)


@app.command("serve")
def serve(
    store: Path = typer.Option(..., help="Registry folder (created if missing)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8700, min=1, max=65535, help="Port to listen on."),
    trust: Path = typer.Option(None, help="Trust store JSON (default: "
                               "$FEDSEED_HOME/trust.json); publishers must be in it."),
) -> None:
    """Serve STORE: publish (signed by a trusted publisher), fetch, list, health."""
    from fedseed.registry.http import serve as run

    console.out(f"fedseed registry serving {store} on http://{host}:{port} "
                f"(OpenAPI at /openapi.json)", highlight=False)
    run(store, host=host, port=port, trust_file=trust)
