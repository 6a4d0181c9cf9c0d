"""``fedseed simulate``: the fedseed ServerApp and ClientApp in one process, on
simulated nodes (Flower's simulation runtime)."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import typer

from fedseed.app.simulation import check_ray_address
from fedseed.cli._common import console
from fedseed.defaults import TRAJECTORY as T


def simulate_cmd(
    clients: int = typer.Option(None, min=1, max=10_000, show_default="10, or one per "
                                "--partition-by user", help="Simulated nodes."),
    rounds: int = typer.Option(3, min=1, max=10_000, help="Federation rounds."),
    dataset: str = typer.Option("digits", help="Built-in data set to partition (digits, "
                                "toy-text), or fortunes (Debian's, one user per category; "
                                "--partitioner natural)."),
    data: Path = typer.Option(None, help="Your own data instead: CSV, JSONL, Parquet or a "
                              "save_to_disk folder."),
    partition_by: str = typer.Option(None, help="Column of --data naming each row's user: "
                                     "one node per user (else --partitioner splits it)."),
    text_column: str = typer.Option("text", help="--data column holding text."),
    label_column: str = typer.Option("label", help="--data column holding the labels (class "
                                     "ids, or the recipe's task.labels names)."),
    partitioner: str = typer.Option("dirichlet", help="iid, dirichlet or natural."),
    alpha: float = typer.Option(0.5, min=0.001, help="Dirichlet concentration."),
    recipe: str = typer.Option("digits-mlp", help="Built-in recipe name or file."),
    aggregator: str = typer.Option("best", help="Meta-recipe aggregator: best, fedex, flora "
                                   "or sha (docs/meta-recipes.md)."),
    robust: bool = typer.Option(True, help="Screen inconsistent client recipes, cap client "
                                "weights, use weighted medians."),
    budget_from_curves: bool = typer.Option(True, help="Set the recommended max_steps from "
                                            "a saturating fit of the learning curves."),
    warm_start: bool = typer.Option(False, help="Pool clients' Adam second moments into the "
                                    "meta-recipe."),
    mode: str = typer.Option("recipes", help="recipes (share configurations) or trajectory "
                             "(share a model as seeds and scalars; docs/seed-trajectories.md)."),
    # Trajectory settings default to None, so that one given in recipes mode is refused
    # rather than ignored; their values default to fedseed.defaults.TRAJECTORY.
    pool_size: int = typer.Option(None, min=1, max=4096, show_default=str(T.pool_size),
                                  help="trajectory: seeds in the pool."),
    zo_steps: int = typer.Option(None, min=1, show_default=str(T.steps),
                                 help="trajectory: zeroth-order steps per round."),
    zo_lr: float = typer.Option(None, min=1e-12, max=10, show_default=str(T.lr),
                                help="trajectory: step size."),
    seeds_per_step: int = typer.Option(None, min=1, max=4096,
                                       show_default=str(T.seeds_per_step),
                                       help="trajectory: pool seeds estimated per step."),
    sampling: str = typer.Option(None, show_default=T.sampling, help="trajectory: uniform or "
                                 "pro (seeds that moved the model are drawn more)."),
    server_lr: float = typer.Option(None, min=1e-9, max=100, show_default=str(T.server_lr),
                                    help="trajectory: multiplies the clients' mean update."),
    trajectory_method: str = typer.Option(None, show_default="zeroth-order",
                                          help="trajectory: zeroth-order (FedKSeed) or "
                                          "first-order (seed projection, Ferret)."),
    projection_k: int = typer.Option(None, min=1, max=65536, show_default="1024",
                                     help="first-order: coefficients per round (K)."),
    projection_lr: float = typer.Option(None, min=1e-9, max=100, show_default="1.0",
                                        help="first-order: server learning rate."),
    projection_dtype: str = typer.Option(None, show_default="float32",
                                         help="first-order: coefficients on the wire, "
                                         "float32 or float16 (half the bytes)."),
    projection_basis: str = typer.Option(None, show_default="auto",
                                         help="first-order: auto (Gaussian up to 1M values "
                                         "per tensor) or count-sketch (every tensor)."),
    dp: str = typer.Option("off", help="Differential privacy: off, central (the server "
                           "adds the noise) or local (every device does); docs/privacy.md."),
    dp_epsilon: float = typer.Option(0.0, min=0.0, help="dp: target epsilon; the noise is "
                                     "calibrated to spend it over --rounds (0: none)."),
    dp_delta: float = typer.Option(0.0, min=0.0, max=0.5, help="dp: delta (0: 1/clients)."),
    dp_noise_multiplier: float = typer.Option(0.0, min=0.0, help="dp: noise multiplier "
                                              "instead of one calibrated to --dp-epsilon."),
    dp_clip: float = typer.Option(1.0, min=1e-12, help="dp: L2 bound of a client's "
                                  "coefficient update (mode trajectory)."),
    fraction: float = typer.Option(0.5, min=0.0001, max=1.0, help="Share of nodes per round."),
    max_steps: int = typer.Option(0, min=0, help="Override the recipe's max_steps (0: keep)."),
    seed: int = typer.Option(0, min=0, help="Partition and sampling seed."),
    home: Path = typer.Option(None, help="Folder for this run's keys, registry and "
                              "report (default: a new folder under ./runs)."),
    parallel: int = typer.Option(2, min=1, max=64, help="ClientApps run at once."),
    final: bool = typer.Option(True, help="Personalise every client at the end."),
    show_clients: bool = typer.Option(False, help="Print each client's final test metric."),
    lineage: bool = typer.Option(False, help="Print the final meta-recipe's lineage."),
    resume: bool = typer.Option(False, help="Continue from the last meta-recipe in --home."),
) -> None:
    """Run a federation on simulated nodes and print the per-round table."""
    from fedseed.errors import FedseedError

    given: dict[str, Any] = {name: value for name, value in (
        ("pool_size", pool_size), ("zo_steps", zo_steps), ("zo_lr", zo_lr),
        ("seeds_per_step", seeds_per_step), ("sampling", sampling),
        ("server_lr", server_lr), ("trajectory_method", trajectory_method),
        ("projection_k", projection_k), ("projection_lr", projection_lr),
        ("projection_dtype", projection_dtype), ("projection_basis", projection_basis))
        if value is not None}
    if mode != "trajectory" and given:
        options = ", ".join("--" + name.replace("_", "-") for name in given)
        raise FedseedError(f"{options}: trajectory settings, but --mode is '{mode}'; add "
                           "--mode trajectory or drop them")
    if partition_by is not None and data is None:
        raise FedseedError("--partition-by names a column of your --data file; add --data")
    if data is not None and dataset != "digits":
        raise FedseedError(f"--data {data} and --dataset {dataset} both name what to "
                           "federate; keep one")
    simulate(clients=clients, rounds=rounds, dataset=dataset, data=data,
             partition_by=partition_by or "", text_column=text_column,
             label_column=label_column, partitioner=partitioner,
             alpha=alpha, recipe=recipe, aggregator=aggregator, fraction=fraction,
             robust=robust, budget_from_curves=budget_from_curves, warm_start=warm_start,
             mode=mode, max_steps=max_steps, seed=seed, home=home, parallel=parallel,
             final=final, show_clients=show_clients, lineage=lineage, resume=resume,
             dp=dp, dp_epsilon=dp_epsilon, dp_delta=dp_delta,
             dp_noise_multiplier=dp_noise_multiplier, dp_clip=dp_clip, **given)


def simulate(*, clients: int | None, rounds: int, dataset: str = "digits",
             data: Path | None = None, partition_by: str = "", text_column: str = "text",
             label_column: str = "label", partitioner: str = "dirichlet", alpha: float = 0.5,
             recipe: str = "digits-mlp",
             aggregator: str = "best", fraction: float = 0.5, robust: bool = True,
             budget_from_curves: bool = True, warm_start: bool = False, mode: str = "recipes",
             pool_size: int = T.pool_size, zo_steps: int = T.steps, zo_lr: float = T.lr,
             seeds_per_step: int = T.seeds_per_step, sampling: str = T.sampling,
             server_lr: float = T.server_lr, trajectory_method: str = "zeroth-order",
             projection_k: int = 1024, projection_lr: float = 1.0,
             projection_dtype: str = "float32", projection_basis: str = "auto",
             max_steps: int = 0,
             seed: int = 0, home: Path | None = None, parallel: int = 2, final: bool = True,
             show_clients: bool = False, lineage: bool = False, resume: bool = False,
             dp: str = "off", dp_epsilon: float = 0.0, dp_delta: float = 0.0,
             dp_noise_multiplier: float = 0.0, dp_clip: float = 1.0) -> None:
    """Run and print a simulated federation (shared by ``simulate`` and ``demo``)."""
    import json

    from rich.progress import Progress
    from rich.table import Table

    from fedseed._internal.atomic import atomic_write_bytes
    from fedseed.data import BUILTIN_DATASETS, load_builtin_dataset
    from fedseed.data.local import check_examples
    from fedseed.data.partition import check_partitioner
    from fedseed.errors import FedseedError
    from fedseed.federation.config import FederationConfig
    from fedseed.meta import AGGREGATORS
    from fedseed.provenance.resolve import resolve_trusted
    from fedseed.provenance.trust import load_trust
    from fedseed.recipe import canonical_bytes

    if data is None:
        check_partitioner(dataset, partitioner)
    elif partition_by and partitioner not in ("dirichlet", "natural"):
        raise FedseedError(f"--partition-by {partition_by} is a natural partition (one node "
                           f"per user); drop --partitioner {partitioner}")
    elif not partition_by and partitioner == "natural":
        raise FedseedError(f"--partitioner natural: name the user column of {data} with "
                           "--partition-by")
    # A signed recipe is verified here, against the caller's trust store; the run's
    # own folder then holds its verified payload as a plain recipe file.
    resolved = resolve_trusted(recipe, load_trust())
    named = resolved.recipe
    if named.init.base is not None:  # every node resolves it; refuse a missing one once
        from fedseed.bases.store import BaseStore

        BaseStore.default().resolve(named.init.base)
    if data is not None:  # a bad file, column or user fails now, once, not in every node
        from fedseed.federation.client import file_partitions

        data = data.resolve()
        if partition_by:
            users = len(file_partitions(str(data), named, 0, partition_by=partition_by,
                                        text_column=text_column, label_column=label_column,
                                        check_count=False))
            if clients is not None and clients != users:
                raise FedseedError(f"--clients {clients}: {data} has {users} users in column "
                                   f"'{partition_by}'; drop --clients (one node per user)")
            clients = users
        else:
            clients = clients or 10
            file_partitions(str(data), named, clients, partitioner=partitioner, alpha=alpha,
                            seed=seed, text_column=text_column, label_column=label_column)
    clients = clients or 10
    if data is not None:
        pass  # checked above
    elif dataset == "fortunes":  # fail now, with the install hint, not in every node
        from fedseed.data.fortunes import load_fortunes

        if len(load_fortunes(max_users=clients)) < clients:
            raise FedseedError(f"--clients {clients}: fortunes has fewer categories with "
                               "enough quotes; use fewer clients")
        if named.task.modality != "text":
            raise FedseedError(f"--dataset fortunes is text, but recipe '{named.name}' is "
                               f"{named.task.modality}; use a text recipe such as "
                               "charlm-gpt2-tiny")
    elif dataset in BUILTIN_DATASETS:  # a recipe that does not fit fails now, once
        check_examples(load_builtin_dataset(dataset), named)
    if aggregator not in AGGREGATORS:
        raise FedseedError(f"--aggregator: unknown aggregator '{aggregator}'; choose from "
                           f"{', '.join(sorted(AGGREGATORS))}")
    if resume and (home is None or not (home / "registry").is_dir()):
        raise FedseedError("--resume needs --home pointing at an earlier run's folder")
    home = (home or Path("runs") / time.strftime("simulate-%Y%m%d-%H%M%S")).resolve()
    cfg = FederationConfig(
        num_rounds=rounds, fraction=fraction, min_nodes=min(clients, 2), recipe=recipe,
        dataset=dataset, partitioner="natural" if partition_by else partitioner,
        alpha=alpha, data=str(data or ""), partition_by=partition_by,
        text_column=text_column, label_column=label_column, aggregator=aggregator,
        robust=robust, budget_from_curves=budget_from_curves, warm_start=warm_start,
        mode=mode, pool_size=pool_size, zo_steps=zo_steps, zo_lr=zo_lr,  # type: ignore[arg-type]
        seeds_per_step=seeds_per_step, sampling=sampling, server_lr=server_lr,
        trajectory_method=trajectory_method, projection_k=projection_k,
        projection_lr=projection_lr, projection_dtype=projection_dtype,
        projection_basis=projection_basis, client_trust="tofu", auto_keys=True,
        registry=str(home / "registry"), seed=seed,
        max_steps=max_steps, final_personalization=final, resume=resume,
        dp=dp, dp_epsilon=dp_epsilon, dp_delta=dp_delta,
        dp_noise_multiplier=dp_noise_multiplier, dp_clip=dp_clip,
    )
    # Settings are checked before anything is written. Simulated clients and the
    # server share this folder: keys, trust, registry.
    check_ray_address()  # a dead cluster address is refused before anything is written
    home.mkdir(parents=True, exist_ok=True)
    if resolved.verified is not None:
        plain = home / "recipe.json"
        atomic_write_bytes(plain, canonical_bytes(named))
        cfg = replace(cfg, recipe=str(plain))
    os.environ["FEDSEED_HOME"] = str(home)
    what = (f"aggregator {aggregator}" if mode != "trajectory"
            else f"first-order trajectory, K = {projection_k}"
            if trajectory_method == "first-order" else f"trajectory mode, {pool_size} seeds")
    source = (f"{data.name} (one client per '{partition_by}')" if data and partition_by
              else f"{data.name if data else dataset} ({partitioner}"
              f"{f' alpha {alpha}' if partitioner == 'dirichlet' else ''})")
    console.out(f"fedseed simulate: {clients} clients, {rounds} rounds, {recipe} on {source}, "
                f"{what}; state in {home}", highlight=False)
    started = time.monotonic()
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("rounds", total=rounds + (1 if final else 0))
        result = _run(cfg, clients, parallel, lambda kind, value: bar.advance(task)
                      if kind in ("round", "final") else None)
    wall = time.monotonic() - started
    table = Table(title=f"rounds (validation {named.task.metric} of accepted client recipes)")
    for column in ("round", "sampled", "accepted", "rejected", "val mean", "val p10",
                   "bytes down/client", "bytes up/client", "seconds"):
        table.add_column(column, justify="right", no_wrap=True)
    for r in result.rounds:
        rejected = ", ".join(f"{k} {v}" for k, v in r.rejected.items()) or "0"
        accepted = f"{r.accepted} ({r.diverged} diverged)" if r.diverged else str(r.accepted)
        table.add_row(str(r.round), str(r.sampled), accepted, rejected,
                      _fmt(r.val_mean), _fmt(r.val_p10),
                      f"{r.bytes_down / max(1, r.sampled):,.0f}",
                      f"{r.bytes_up / max(1, r.accepted + sum(r.rejected.values())):,.0f}",
                      f"{r.seconds:.1f}")
    console.print(table)
    if result.final:
        f = result.final
        shared = (f"replayed shared model {_pair(f, 'test-metric-shared')}, fine-tuned from it "
                  if "test-metric-shared" in f else "final meta-recipe ")
        console.out(
            f"final personalization ({f['reported']}/{f['clients']} clients), test metric "
            f"mean/p10: {shared}{_pair(f, 'test-metric-meta')}, round-0 recipe "
            f"{_pair(f, 'test-metric-baseline')}", highlight=False)
    if show_clients and result.final.get("per_client"):
        metric = named.task.metric
        clients_table = Table(title=f"personalised test {metric} per client")
        for column in ("node", "examples", "final meta-recipe", "round-0 recipe", "gain"):
            clients_table.add_column(column, justify="right", no_wrap=True)
        for row in result.final["per_client"]:
            meta, base = row["test-metric-meta"], row["test-metric-baseline"]
            clients_table.add_row(str(row["node"])[-6:], f"{row['num-examples']:.0f}",
                                  f"{meta:.3f}", f"{base:.3f}", f"{meta - base:+.3f}")
        console.print(clients_table)
    if lineage:
        _print_meta_chain(f"{result.meta_name}:latest", home / "registry")
    report = home / "report.json"
    report.write_text(json.dumps({**result.as_dict(), "wall_seconds": round(wall, 1),
                                  "clients": clients}, indent=2) + "\n")
    if result.meta is not None and result.meta.privacy is not None:
        from fedseed.cli.recipe import privacy_line

        stopped = result.privacy.get("stopped_at_round")
        console.out("privacy: " + privacy_line(result.meta)
                    + (f"; stopped before round {stopped} (target reached)" if stopped
                       else ""), highlight=False)
    console.out(f"final meta-recipe {result.meta_digests[-1]} ({result.meta_name}:latest); "
                f"wall {wall:.1f}s; report {report}", highlight=False)


def _run(cfg, clients: int, parallel: int, on_event):
    import logging

    from flwr.simulation import run_simulation

    from fedseed.app.client_app import make_client_app
    from fedseed.app.server_app import make_server_app
    from fedseed.app.simulation import backend_config, join_ray_cluster
    from fedseed.errors import AggregationError
    from fedseed.federation.strategy import FederationResult

    results: list[FederationResult] = []
    # Flower warns that run_simulation is deprecated in favour of `flwr run`; fedseed
    # offers both on purpose (in-process runs are what tests and notebooks need).
    logging.getLogger("flwr").setLevel(logging.ERROR)
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    join_ray_cluster()
    run_simulation(
        server_app=make_server_app(cfg, on_event, results),
        # The nodes partition what the server was told to federate.
        client_app=make_client_app({"dataset": cfg.dataset, "partitioner": cfg.partitioner,
                                    "alpha": cfg.alpha, "seed": cfg.seed,
                                    "registry": cfg.registry, "data": cfg.data,
                                    "partition-by": cfg.partition_by,
                                    "text-column": cfg.text_column,
                                    "label-column": cfg.label_column}),
        num_supernodes=clients,
        backend_config=backend_config(parallel),
    )
    if not results:
        raise AggregationError("the simulation ended without a result; see the log above")
    return results[0]


def _print_meta_chain(ref: str, registry_path: Path) -> None:
    """The lineage of a meta-recipe, one line per round (client recipes counted, not
    listed; `fedseed recipe lineage` prints the whole tree)."""
    from fedseed.provenance.trust import load_trust
    from fedseed.registry.client import open_registry
    from fedseed.registry.lineage import lineage_tree, problems

    trust = load_trust()
    node: Any = lineage_tree(open_registry(str(registry_path), trust), ref, trust)
    issues = problems(node)
    status = "; ".join(issues) if issues else "every signature verified"
    console.out(f"lineage of {ref} ({status}):", highlight=False)
    while node is not None and node.recipe is not None:
        lin = node.recipe.lineage
        parents = node.parents
        kinds = {p.recipe.lineage.method if p.recipe and p.recipe.lineage else "root"
                 for p in parents}
        what = (f"{len(parents)} {'/'.join(sorted(kinds))} recipe(s)" if parents else "-")
        console.out(f"  round {lin.round if lin else '-':>3}  {node.digest[:19]}  "
                    f"{lin.method if lin else 'root':8} <- {what}", highlight=False)
        # Client recipes all descend from the previous meta-recipe: follow it; a
        # recipe whose parents have no parents (the round-0 meta) leads to the root.
        candidates = [g for p in parents for g in p.parents] or parents
        node = next((c for c in candidates if not c.seen_before), None)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _pair(final: dict, name: str) -> str:
    item = final.get(name)
    return "-" if not item else f"{item['mean']:.3f}/{item['p10']:.3f}"
