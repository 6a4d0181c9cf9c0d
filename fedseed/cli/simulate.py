"""``fedseed simulate``: the fedseed ServerApp and ClientApp in one process, on
simulated nodes (Flower's simulation runtime)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import typer

from fedseed.cli._common import console


def simulate_cmd(
    clients: int = typer.Option(10, min=1, max=10_000, help="Simulated nodes."),
    rounds: int = typer.Option(3, min=1, max=10_000, help="Federation rounds."),
    dataset: str = typer.Option("digits", help="Built-in data set to partition."),
    partitioner: str = typer.Option("dirichlet", help="iid, dirichlet or natural."),
    alpha: float = typer.Option(0.5, min=0.001, help="Dirichlet concentration."),
    recipe: str = typer.Option("digits-mlp", help="Built-in recipe name or file."),
    aggregator: str = typer.Option("best", help="Meta-recipe aggregator."),
    fraction: float = typer.Option(0.5, min=0.0001, max=1.0, help="Share of nodes per round."),
    max_steps: int = typer.Option(0, min=0, help="Override the recipe's max_steps (0: keep)."),
    seed: int = typer.Option(0, min=0, help="Partition and sampling seed."),
    home: Path = typer.Option(None, help="Folder for this run's keys, registry and "
                              "report (default: a new folder under ./runs)."),
    parallel: int = typer.Option(2, min=1, max=64, help="ClientApps run at once."),
    final: bool = typer.Option(True, help="Personalise every client at the end."),
) -> None:
    """Run a federation on simulated nodes and print the per-round table."""
    import json

    from rich.progress import Progress
    from rich.table import Table

    from fedseed.federation.config import FederationConfig

    home = (home or Path("runs") / time.strftime("simulate-%Y%m%d-%H%M%S")).resolve()
    home.mkdir(parents=True, exist_ok=True)
    # Simulated clients and the server share this folder: keys, trust, registry.
    os.environ["FEDSEED_HOME"] = str(home)
    cfg = FederationConfig(
        num_rounds=rounds, fraction=fraction, min_nodes=min(clients, 2), recipe=recipe,
        dataset=dataset, partitioner=partitioner, alpha=alpha, aggregator=aggregator,
        client_trust="tofu", auto_keys=True, registry=str(home / "registry"), seed=seed,
        max_steps=max_steps, final_personalization=final,
    )
    console.out(f"fedseed simulate: {clients} clients, {rounds} rounds, {recipe} on {dataset} "
                f"({partitioner}{f' alpha {alpha}' if partitioner == 'dirichlet' else ''}), "
                f"aggregator {aggregator}; state in {home}", highlight=False)
    started = time.monotonic()
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("rounds", total=rounds + (1 if final else 0))
        result = _run(cfg, clients, parallel, lambda kind, value: bar.advance(task)
                      if kind in ("round", "final") else None)
    wall = time.monotonic() - started
    table = Table(title=f"rounds (validation {cfg_metric(recipe)} of accepted client recipes)")
    for column in ("round", "sampled", "accepted", "rejected", "val mean", "val p10",
                   "bytes down", "bytes up", "seconds"):
        table.add_column(column, justify="right", no_wrap=True)
    for r in result.rounds:
        rejected = ", ".join(f"{k} {v}" for k, v in r.rejected.items()) or "0"
        table.add_row(str(r.round), str(r.sampled), str(r.accepted), rejected,
                      _fmt(r.val_mean), _fmt(r.val_p10), f"{r.bytes_down:,}",
                      f"{r.bytes_up:,}", f"{r.seconds:.1f}")
    console.print(table, width=max(console.width, 110))
    if result.final:
        f = result.final
        console.out(
            f"final personalization ({f['reported']}/{f['clients']} clients), test metric "
            f"mean/p10: final meta-recipe {_pair(f, 'test-metric-meta')}, round-0 recipe "
            f"{_pair(f, 'test-metric-baseline')}", highlight=False)
    report = home / "report.json"
    report.write_text(json.dumps({**result.as_dict(), "wall_seconds": round(wall, 1),
                                  "clients": clients}, indent=2) + "\n")
    console.out(f"final meta-recipe {result.meta_digests[-1]} ({result.meta_name}:latest); "
                f"wall {wall:.1f}s; report {report}", highlight=False)


def _run(cfg, clients: int, parallel: int, on_event):  # type: ignore[no-untyped-def]
    import logging

    from flwr.simulation import run_simulation

    from fedseed.app.client_app import app as client_app
    from fedseed.app.server_app import FederationResult, make_server_app
    from fedseed.errors import AggregationError

    results: list[FederationResult] = []
    # Flower warns that run_simulation is deprecated in favour of `flwr run`; fedseed
    # offers both on purpose (in-process runs are what tests and notebooks need).
    logging.getLogger("flwr").setLevel(logging.ERROR)
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    run_simulation(
        server_app=make_server_app(cfg, on_event, results), client_app=client_app,
        num_supernodes=clients,
        backend_config={"client_resources": {"num_cpus": max(1, 2 // parallel) if parallel
                                             <= 2 else 1, "num_gpus": 0.0},
                        "init_args": {"num_cpus": max(2, parallel), "log_to_driver": False,
                                      "logging_level": logging.ERROR}},
    )
    if not results:
        raise AggregationError("the simulation ended without a result; see the log above")
    return results[0]


def cfg_metric(recipe: str) -> str:
    """The metric name of a recipe reference, for table titles."""
    from fedseed.recipe import resolve_recipe

    return resolve_recipe(recipe).task.metric


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _pair(final: dict, name: str) -> str:  # type: ignore[type-arg]
    item = final.get(name)
    return "-" if not item else f"{item['mean']:.3f}/{item['p10']:.3f}"
