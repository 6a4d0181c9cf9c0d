"""``fedseed recipe ...``: inspect and validate recipes."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from fedseed.cli._common import console

app = typer.Typer(help="Inspect, validate and describe recipes.", no_args_is_help=True)


@app.command("schema")
def schema() -> None:
    """Print the JSON Schema of recipes."""
    from fedseed.recipe.model import Recipe

    console.out(json.dumps(Recipe.model_json_schema(by_alias=True), indent=2, sort_keys=True),
                highlight=False)


@app.command("validate")
def validate(file: Path = typer.Argument(..., help="Recipe JSON file.")) -> None:
    """Check a recipe file; print its digest, or one line naming what is wrong."""
    from fedseed.recipe.codec import canonical_bytes, read_recipe_file, recipe_digest

    recipe = read_recipe_file(file)
    console.out(f"ok {recipe.name} {recipe_digest(recipe)} "
                f"({len(canonical_bytes(recipe))} canonical bytes)", highlight=False)


def _load(ref: str, registry: str | None):  # type: ignore[no-untyped-def]
    """A file, a built-in name, or else a registry ref; with the signature status."""
    from fedseed.errors import FedseedError, RecipeError
    from fedseed.provenance.resolve import signed_file
    from fedseed.provenance.trust import load_trust
    from fedseed.recipe import resolve_recipe

    raw = signed_file(ref)
    if raw is None:
        try:
            return resolve_recipe(ref), None
        except RecipeError:
            if Path(ref).exists() or ref.endswith(".json"):
                raise
    from fedseed.provenance.packed import read_envelope
    from fedseed.provenance.verify import verify_envelope
    from fedseed.recipe import parse_recipe
    from fedseed.registry.client import open_registry

    trust = load_trust()
    envelope = (read_envelope(raw, ref) if raw is not None
                else open_registry(registry, trust).fetch(ref))
    try:
        verified = verify_envelope(envelope, trust, source=ref)
        return verified.recipe, "verified, signed by " + ", ".join(
            k[:16] for k in verified.keyids)
    except FedseedError as e:
        # Showing is not using: print what it says, marked as unverified.
        return parse_recipe(envelope.payload, ref), f"NOT verified: {e.diagnostics()}"


@app.command("show")
def show(
    ref: str = typer.Argument(..., help="Recipe file, built-in name, or registry "
                              "NAME[:TAG] / sha256:DIGEST."),
    registry: str = typer.Option(None, help="Registry folder or URL (default: "
                                 "$FEDSEED_HOME/registry)."),
) -> None:
    """Summarise a recipe: task, architecture and size, optimizer, budget, digest."""
    from rich.table import Table

    from fedseed.assemble import parameter_count
    from fedseed.recipe import canonical_bytes, recipe_digest

    recipe, signature = _load(ref, registry)
    task, arch, opt, budget = recipe.task, recipe.architecture, recipe.optimizer, recipe.budget
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    labels = f", {task.num_labels} labels" if task.num_labels else ""
    table.add_row("name", recipe.name)
    table.add_row("task", f"{task.kind} ({task.modality}{labels}), metric {task.metric}")
    table.add_row("architecture", f"{arch.family}:{arch.name}")
    table.add_row("parameters", f"{parameter_count(recipe):,}")
    if recipe.tokenizer is not None:
        tok = recipe.tokenizer
        table.add_row("tokenizer", f"{tok.kind}, {tok.vocab_size} ids, max_length {tok.max_length}")
    hyper = ", ".join(f"{k}={v}" for k, v in opt.model_dump().items() if k != "name")
    table.add_row("optimizer", f"{opt.name} ({hyper})")
    sched = recipe.schedule
    table.add_row("schedule", f"{sched.name}, warmup {sched.warmup_steps} steps")
    stop = budget.early_stopping
    table.add_row("budget", f"max_steps {budget.max_steps}, batch_size {budget.batch_size}, "
                  f"grad_clip {budget.grad_clip}, eval_every {budget.eval_every}, "
                  f"early stopping {'patience ' + str(stop.patience) if stop else 'off'}")
    if recipe.search_space is not None:
        table.add_row("search space", ", ".join(recipe.search_space.params))
    if recipe.evidence is not None:
        ev = recipe.evidence
        test = f", test {ev.final.test_metric}" if ev.final.test_metric is not None else ""
        table.add_row("evidence", f"{ev.steps} steps, {len(ev.curve)} curve points, "
                      f"val {task.metric} {ev.final.val_metric}{test}, "
                      f"{len(ev.optimizer_stats)} tensor stats")
    if recipe.lineage is not None:
        lin = recipe.lineage
        table.add_row("lineage", f"{lin.method}, round {lin.round}, parents "
                      + (", ".join(p[:19] for p in lin.parents) or "none"))
    if recipe.init.base is not None:
        table.add_row("base", f"{recipe.init.base} (pretrained, from the base store)")
    table.add_row("size", f"{len(canonical_bytes(recipe)):,} bytes (canonical)")
    table.add_row("digest", recipe_digest(recipe))
    if signature is not None:
        table.add_row("signature", signature)
    console.print(table)


@app.command("list")
def list_recipes(
    registry: str = typer.Option(None, help="Registry folder or URL (default: "
                                 "$FEDSEED_HOME/registry)."),
) -> None:
    """List the built-in recipes and those published in the registry."""
    from fedseed.provenance.trust import TrustStore
    from fedseed.recipe import builtin_names, load_builtin
    from fedseed.registry.client import open_registry

    console.out("built-in:", highlight=False)
    for name in builtin_names():
        recipe = load_builtin(name)
        console.out(f"  {name:20} {recipe.task.kind:18} {recipe.architecture_key}",
                    highlight=False)
    client = open_registry(registry, TrustStore())
    entries = client.entries()
    console.out(f"registry {client.location}: {len(entries)} recipe(s)", highlight=False)
    for e in entries:
        tags = ",".join(e.tags) or "-"
        console.out(f"  {e.name:20} {tags:12} {e.digest} {e.publisher[:16]} {e.created}",
                    highlight=False)
