"""Helpers shared by the CLI commands: one console, one way to load a recipe ref."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from rich.console import Console

from fedseed.errors import RecipeError

# Piped output (CI logs, files) gets 120 columns rather than Rich's 80, so tables keep
# their headers; a terminal keeps its own width.
console = Console() if sys.stdout.isatty() or "COLUMNS" in os.environ else Console(width=120)
err_console = Console(stderr=True)


def parse_assignments(items: list[str] | None) -> dict[str, Any]:
    """``["optimizer.lr=0.01", ...]`` -> ``{"optimizer.lr": 0.01}`` (JSON values, else text).

    ``null`` is allowed (``budget.grad_clip=null`` turns clipping off)."""
    out: dict[str, Any] = {}
    for item in items or []:
        path, sep, raw = item.partition("=")
        if not sep or not path:
            raise RecipeError(f"--set '{item}': expected PATH=VALUE, e.g. optimizer.lr=0.01")
        try:
            out[path.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[path.strip()] = raw
    return out


def use_recipe(ref: str) -> Any:
    """The recipe a command will use: a built-in, a recipe file, or a signed envelope
    verified against ``$FEDSEED_HOME``'s trust store (a failed check exits 1)."""
    from fedseed.provenance.resolve import resolve_trusted
    from fedseed.provenance.trust import load_trust

    resolved = resolve_trusted(ref, load_trust())
    if resolved.verified is not None:
        keys = ", ".join(k[:16] for k in resolved.verified.keyids)
        err_console.print(f"{ref}: signature verified (key {keys})", highlight=False)
    return resolved.recipe
