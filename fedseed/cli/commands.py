"""``fedseed assemble``, ``fedseed personalize`` and ``fedseed demo``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from fedseed.cli._common import console, parse_assignments, use_recipe

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

RECIPE_HELP = ("Built-in name, recipe file, or signed recipe (used once its signature "
               "verifies against the trust store).")


def assemble_cmd(
    ref: str = typer.Argument(..., help=RECIPE_HELP),
    out: Path = typer.Option(..., "-o", "--out", help="Where to write model.safetensors."),
) -> None:
    """Build a recipe's model with its deterministic random initialisation."""
    from fedseed.assemble import assemble, save_weights, state_dict_digest
    recipe = use_recipe(ref)
    model = assemble(recipe)
    save_weights(model, out, recipe)
    count = sum(p.numel() for p in model.parameters())
    console.out(f"wrote {out} ({count:,} parameters, weights {state_dict_digest(model)})",
                highlight=False)


def personalize_cmd(
    ref: str = typer.Argument(..., help=RECIPE_HELP),
    data: str = typer.Option(..., help="CSV, JSONL, Parquet, a save_to_disk folder, or a "
                      "built-in set: digits, toy-text."),
    out: Path = typer.Option(..., help="Folder for model.safetensors and recipe.json."),
    text_column: str = typer.Option("text", help="Column holding text (text recipes)."),
    label_column: str = typer.Option("label", help="Column holding the labels: class ids "
                                     "0..num_labels-1, or the recipe's task.labels names."),
    set_: list[str] = typer.Option(None, "--set", help="Override PATH=VALUE, e.g. "
                                   "optimizer.lr=0.01 or task.num_labels=10 (repeatable)."),
    force: bool = typer.Option(False, help="Replace --out if it exists and is not empty."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress bar."),
) -> None:
    """Train a recipe on local data; write personalised weights and a client recipe."""
    from fedseed._internal.atomic import check_output_folder
    from fedseed._internal.memory import return_freed_memory

    check_output_folder(out, overwrite=force)  # refused in a blink, before torch loads
    from fedseed.personalize import RECIPE_FILE, WEIGHTS_FILE, personalize

    return_freed_memory()  # the edge bound: docs/results/overhead.md
    recipe = use_recipe(ref)
    if recipe.init.base is not None:  # a missing or altered base: refused before training
        from fedseed.bases.store import BaseStore

        BaseStore.default().resolve(recipe.init.base)
    from fedseed.recipe.overrides import TASK_PATHS, apply_overrides

    assignment = parse_assignments(set_)
    task = {p: v for p, v in assignment.items() if p in TASK_PATHS}
    if task:  # a new problem (say 10 classes): the recipe itself changes, then trains
        recipe = apply_overrides(recipe, task)
        assignment = {p: v for p, v in assignment.items() if p not in TASK_PATHS}
    with _progress_bar(recipe.task.metric, quiet) as on_step:
        done = personalize(recipe, data, out, text_column=text_column,
                           label_column=label_column, assignment=assignment or None,
                           overwrite=force, progress=on_step)
    ev = done.recipe.evidence
    assert ev is not None
    metric = recipe.task.metric
    test = f", test {metric} {ev.final.test_metric:.4g}" if ev.final.test_metric is not None else ""
    if ev.diverged:
        outcome = (f"DIVERGED at step {ev.steps} (the loss went non-finite): try a smaller "
                   "optimizer.lr; the client recipe reports the worst metrics")
    else:
        stop = " (early stop)" if ev.stopped_early else ""
        outcome = f"{ev.steps} steps in {ev.wall_seconds:.1f}s{stop}: val {metric} " \
                  f"{ev.final.val_metric:.4g}{test}"
    console.out(
        f"{outcome}\n"
        f"weights (stay on this device): {out / WEIGHTS_FILE}\n"
        f"client recipe: {out / RECIPE_FILE} {done.digest}", highlight=False)


def demo_cmd(
    users: int = typer.Option(10, min=1, max=200, help="Simulated users (clients)."),
    rounds: int = typer.Option(3, min=1, max=100, help="Federation rounds."),
    alpha: float = typer.Option(0.5, min=0.01, max=1000.0, help="Dirichlet concentration."),
    recipe_ref: str = typer.Option("digits-mlp", "--recipe", help="Tabular or image recipe."),
    seed: int = typer.Option(0, min=0, help="Partition seed."),
    local: bool = typer.Option(False, help="No federation: each user trains the recipe alone."),
) -> None:
    """A small federation on the embedded digits set (``--local``: no federation)."""
    if not local:
        from fedseed.cli.simulate import simulate

        simulate(clients=users, rounds=rounds, alpha=alpha, recipe=recipe_ref, seed=seed,
                 fraction=1.0, show_clients=True, lineage=True)
        return
    import statistics

    from rich.progress import Progress
    from rich.table import Table

    from fedseed.demo import run_demo
    recipe = use_recipe(recipe_ref)
    console.out(f"fedseed demo: {recipe.name} on digits, {users} users, Dirichlet alpha {alpha}",
                highlight=False)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("personalising", total=users)
        rows = run_demo(recipe, users=users, alpha=alpha, seed=seed,
                        on_user=lambda _: bar.advance(task))
    table = Table(title=f"personalised {recipe.task.metric} per user")
    for column in ("user", "examples", "classes", "steps", "val", "test", "recipe bytes"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(str(r.user), str(r.examples), str(r.classes), str(r.steps),
                      f"{r.val_metric:.3f}", f"{r.test_metric:.3f}", f"{r.recipe_bytes:,}")
    console.print(table)
    tests = sorted(r.test_metric for r in rows)
    p10 = tests[max(0, int(0.1 * (len(tests) - 1)))]
    console.out(f"mean test {recipe.task.metric} {statistics.fmean(tests):.3f}, "
                f"10th percentile {p10:.3f}; weights stayed on each device, "
                "only client recipes (configuration + evidence) would travel", highlight=False)


class _progress_bar:
    """Context manager yielding a training progress callback (or None when quiet).

    The bar, and Rich's refresh thread, start at the first step: the model is built
    while the process has one thread (``fedseed._internal.memory.deferred_import``).
    """

    def __init__(self, metric: str, quiet: bool) -> None:
        self.metric, self.quiet = metric, quiet
        self.bar: Progress | None = None
        self.task: TaskID | None = None

    def __enter__(self):
        if self.quiet:
            return None

        def on_step(p):
            if self.bar is None:
                self._start()
            status = None
            if p.last is not None:
                status = f"val {self.metric} {p.last.val_metric:.4g}"
            self.bar.update(self.task, completed=p.step, total=p.max_steps,
                            **({"status": status} if status else {}))

        return on_step

    def _start(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.bar = Progress(TextColumn("training"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("{task.fields[status]}"),
                            console=console, transient=True)
        self.bar.__enter__()
        self.task = self.bar.add_task("train", total=None, status="")

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)
        return False
