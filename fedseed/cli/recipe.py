"""``fedseed recipe ...``: inspect and validate recipes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from fedseed.cli._common import console

app = typer.Typer(help="Inspect, validate, describe and derive recipes.", no_args_is_help=True)


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


def _load(ref: str, registry: str | None):
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
    if recipe.privacy is not None:
        table.add_row("privacy", privacy_line(recipe))
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


def privacy_line(recipe: Any) -> str:
    """A recipe's privacy section in one line: epsilon spent (of the target), and what
    the mechanism releases."""
    p = recipe.privacy
    target = f" of target {p.target_epsilon:g}" if p.target_epsilon is not None else ""
    released = (f"coefficients clipped to L2 {p.clip:g}, evidence withheld"
                if recipe.trajectory is not None or recipe.projection is not None
                else f"validation losses in [0, {p.loss_bound:.3g}] at {p.curve_points} "
                     "public steps")
    return (f"epsilon {p.epsilon:.3g} spent{target} at delta {p.delta:.3g} after "
            f"{p.rounds} round(s); {p.mode} Gaussian, noise multiplier "
            f"{p.noise_multiplier:.4g} ({released}); {p.accountant} accountant, "
            f"{p.sampling}, {p.population} devices")


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


@app.command("new")
def new(
    base: str = typer.Option(..., "--from", help="Built-in name or recipe file to derive from."),
    out: Path = typer.Option(..., "-o", "--out", help="Where to write the new recipe (JSON)."),
    labels_from: str = typer.Option(None, "--labels-from", help="FILE:COLUMN whose distinct "
                                    "values become task.labels (and task.num_labels)."),
    name: str = typer.Option(None, help="Name of the new recipe (default: the file's stem)."),
    architecture: str = typer.Option(None, help="A model factory registered on this device "
                                     "(entry point group fedseed.architectures), pinned "
                                     "by its entry and source digest."),
    architecture_config: str = typer.Option(None, help="JSON object passed to the "
                                            "factory as architecture.config."),
    set_: list[str] = typer.Option(None, "--set", help="Override PATH=VALUE, e.g. "
                                   "task.num_labels=10 or optimizer.lr=0.01 (repeatable)."),
    force: bool = typer.Option(False, help="Replace --out if it exists."),
) -> None:
    """Derive a recipe for your own data: its class names, task fields, settings."""
    from fedseed._internal.atomic import atomic_write_bytes
    from fedseed.cli._common import parse_assignments, use_recipe
    from fedseed.errors import DataError, RecipeError
    from fedseed.recipe.codec import (
        canonical_bytes,
        canonical_dict,
        recipe_digest,
        recipe_from_dict,
    )
    from fedseed.recipe.overrides import apply_overrides

    if out.exists() and not force:
        raise RecipeError(f"{out}: already exists; pass --force to replace it")
    recipe = use_recipe(base)
    overrides = parse_assignments(set_)
    data = canonical_dict(recipe)
    data["name"] = name or out.name.removesuffix(".json")
    if labels_from is not None:
        from fedseed.data.local import label_names

        path, sep, column = labels_from.rpartition(":")
        if not sep or not path or not column:
            raise DataError(f"--labels-from '{labels_from}': expected FILE:COLUMN, e.g. "
                            "mine.csv:label")
        if data["task"]["kind"] != "classification":
            raise RecipeError(f"--labels-from: recipe '{recipe.name}' is "
                              f"{data['task']['kind']}, not classification")
        if "task.num_labels" in overrides:
            raise RecipeError("--labels-from sets task.num_labels from the file; drop "
                              "--set task.num_labels")
        labels = label_names(path, column)
        data["task"] = {**data["task"], "num_labels": len(labels), "labels": labels}
    derived = apply_overrides(recipe_from_dict(data, source=str(out)), overrides)
    if architecture is not None:
        from fedseed.architectures import with_architecture

        try:
            config = json.loads(architecture_config) if architecture_config else {}
        except json.JSONDecodeError as e:
            raise RecipeError(f"--architecture-config: not JSON ({e.msg})") from e
        if not isinstance(config, dict):
            raise RecipeError("--architecture-config: expected a JSON object, e.g. "
                              '\'{"width": 32}\'')
        derived = with_architecture(derived, architecture, config)
    elif architecture_config is not None:
        raise RecipeError("--architecture-config configures --architecture; add it")
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, canonical_bytes(derived))
    task = derived.task
    classes = f"{task.num_labels} labels" + (f" ({', '.join(task.labels[:6])}"
                                             f"{', ...' if len(task.labels) > 6 else ''})"
                                             if task.labels else "") \
        if task.num_labels else task.kind
    console.out(f"wrote {out}: {derived.name} from {recipe.name}, {classes}, "
                f"{recipe_digest(derived)}", highlight=False)
