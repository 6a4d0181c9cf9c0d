"""``fedseed bench budget``: the minimal fine-tuning budget (the seed roadmap's
Phase 2.2). How much of the full result does a new device reach with ``n`` training
samples and ``s`` optimizer steps?

Per task (``simulations/budget.toml``) the data set is shuffled once and cut into a
fixed test set, a fixed validation set, the new device's *pool* and the rows of a
small federation. The reference is the recipe as published (its own budget, early
stopping included) trained on the whole pool. Every grid cell trains exactly ``s``
steps (no early stopping; the recipe's schedule compressed into ``s``) on ``n`` rows
drawn from the pool (``repeats`` draws, the same draws for every start and step
count) and is scored on the test set, as a fraction of the reference's accuracy.

Starts: ``default`` (the built-in recipe), ``meta`` (the final meta-recipe of a real
fedseed federation among the other users; Flower simulation) and ``shared`` (the
shared model of a first-order seed-projection federation among the same users,
replayed from seeds: fedseed's own learned starting point, where a recipe has no
pretrained base).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fedseed.bench.jobs import Pool
from fedseed.bench.personalization_config import Settings, build_table, read_toml
from fedseed.data.examples import Examples
from fedseed.errors import FedseedError

Event = Callable[[str], None]
COMMAND = "fedseed bench budget"
#: The roadmap's claim: fewer than 100 samples and 100 steps reach 95% of the full result.
CLAIM_SAMPLES, CLAIM_STEPS, CLAIM_SHARE = 100, 100, 0.95
STARTS = ("default", "meta", "shared")


@dataclass(frozen=True)
class Task:
    """One heat map group: a recipe on a data set (see simulations/budget.toml)."""

    name: str
    dataset: str  # digits | fortune-categories
    recipe: str
    samples: tuple[int, ...] = (10, 25, 50, 100, 250, 500)
    steps: tuple[int, ...] = (1, 5, 10, 30, 100, 300)
    starts: tuple[str, ...] = STARTS
    repeats: int = 3
    test_rows: int = 300
    val_rows: int = 100
    pool_rows: int = 600
    categories: int = 10  # fortune-categories: the largest categories
    # The federations behind the meta and shared starts, among the rows left over.
    federation_clients: int = 10
    federation_rows: int = 0  # 0: every row not in test, validation or pool
    alpha: float = 0.5
    aggregator: str = "sha"
    federation_rounds: int = 3
    federation_max_steps: int = 0  # 0: the recipe's budget
    fo_rounds: int = 20
    fo_local_steps: int = 20
    fo_lr: float = 0.0
    projection_k: int = 1024
    projection_dtype: str = "float16"

    def __post_init__(self) -> None:
        problems = [
            (self.dataset in ("digits", "fortune-categories"),
             f"dataset '{self.dataset}' is not one of digits, fortune-categories"),
            (bool(self.samples) and all(n >= 1 for n in self.samples),
             f"samples {list(self.samples)} must be at least 1 each"),
            (bool(self.steps) and all(s >= 1 for s in self.steps),
             f"steps {list(self.steps)} must be at least 1 each"),
            (bool(self.starts) and set(self.starts) <= set(STARTS),
             f"starts {list(self.starts)} must be among {', '.join(STARTS)}"),
            (max(self.samples, default=0) <= self.pool_rows,
             f"pool_rows {self.pool_rows} is smaller than the largest sample count "
             f"{max(self.samples, default=0)}"),
            (self.repeats >= 1 and self.test_rows >= 1 and self.val_rows >= 1
             and self.federation_clients >= 2,
             "repeats, test_rows and val_rows must be at least 1, federation_clients at "
             "least 2"),
        ]
        for ok, message in problems:
            if not ok:
                raise FedseedError(f"budget task '{self.name}': {message}")


def load_budget_config(path: Path, only: Sequence[str] = ()) -> tuple[Settings, list[Task]]:
    """Read ``simulations/budget.toml`` strictly (unknown keys refused by name)."""
    data = read_toml(path)
    settings = build_table(Settings, data.get("run", {}), f"{path} [run]")
    tasks = []
    for i, raw in enumerate(data.get("task", [])):
        raw = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
        tasks.append(build_table(Task, raw, f"{path} task {i + 1}"))
    if not tasks:
        raise FedseedError(f"{path}: no [[task]] tables")
    if only:
        unknown = sorted(set(only) - {t.name for t in tasks})
        if unknown:
            raise FedseedError(f"--task '{unknown[0]}' is not in {path} (there: "
                               f"{', '.join(t.name for t in tasks)})")
        tasks = [t for t in tasks if t.name in only]
    return settings, tasks


# --- data ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Cut:
    """A task's data, cut once: the new device's fixed test and validation sets, its
    pool of training rows, and the rows of the federation's users."""

    test: Examples
    validation: Examples
    pool: Examples
    federation: Examples


def load_task_data(task: Task) -> Examples:
    """The task's whole labelled data set."""
    if task.dataset == "digits":
        from fedseed.data.builtin import load_builtin_dataset

        return load_builtin_dataset("digits")
    from fedseed.data.fortune_categories import labelled_fortunes

    return labelled_fortunes(task.categories).examples


def cut(examples: Examples, task: Task, seed: int) -> Cut:
    """Shuffle once (``seed``) and cut test | validation | pool | federation."""
    need = task.test_rows + task.val_rows + task.pool_rows
    if len(examples) < need + 2 * task.federation_clients:
        raise FedseedError(f"budget task '{task.name}': {examples.source} has {len(examples)} "
                           f"rows, fewer than test + validation + pool ({need}) plus two per "
                           f"federated user")
    order = np.random.default_rng(seed).permutation(len(examples))
    a, b, c = task.test_rows, task.test_rows + task.val_rows, need
    return Cut(test=examples.take(order[:a]), validation=examples.take(order[a:b]),
               pool=examples.take(order[b:c]),
               federation=examples.take(order[c:c + task.federation_rows]
                                        if task.federation_rows else order[c:]))


def draws(pool_size: int, samples: Sequence[int], repeats: int, seed: int
          ) -> dict[int, list[np.ndarray]]:
    """Per sample count, ``repeats`` seeded draws of pool rows (without replacement).
    Draw ``r`` of a smaller count is a prefix of draw ``r`` of a larger one, so that
    a larger cell holds every row of a smaller one."""
    orders = [np.random.default_rng([seed, r]).permutation(pool_size) for r in range(repeats)]
    return {n: [o[:n] for o in orders] for n in samples}


# --- jobs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CellJob:
    """Train ``recipe`` (canonical bytes) on ``train``; score it on the fixed sets."""

    recipe: bytes
    train: Examples
    validation: Examples
    test: Examples
    initial_state: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class CellOutcome:
    test: float
    steps: int
    seconds: float
    curve: tuple[tuple[int, float], ...] = field(default_factory=tuple)


def run_cell(job: CellJob) -> CellOutcome:
    """One grid cell, in a worker process."""
    from fedseed.assemble import assemble
    from fedseed.data.examples import Splits
    from fedseed.recipe.codec import parse_recipe
    from fedseed.train.loop import train

    recipe = parse_recipe(job.recipe, "budget benchmark recipe")
    started = time.perf_counter()
    model = assemble(recipe)
    if job.initial_state is not None:
        model.load_state_dict(dict(job.initial_state))
    result = train(recipe, model, Splits(train=job.train, validation=job.validation,
                                         test=job.test))
    final = result.evidence.final
    return CellOutcome(test=float(final.test_metric if final.test_metric is not None
                                  else final.val_metric),
                       steps=result.evidence.steps, seconds=time.perf_counter() - started,
                       curve=tuple((p.step, p.val_metric) for p in result.evidence.curve))


# --- starts -------------------------------------------------------------------------


@dataclass
class Start:
    """Where every cell of one heat map starts: a recipe and, maybe, weights."""

    name: str
    recipe: Any
    initial_state: Mapping[str, Any] | None = None
    details: dict[str, Any] = field(default_factory=dict)


def federation_users(task: Task, data: Cut, seed: int) -> list[Examples]:
    """The federation's users: the leftover rows dealt by Dirichlet(alpha) labels."""
    from fedseed.data.partition import partition

    return partition(data.federation, task.federation_clients, partitioner="dirichlet",
                     alpha=task.alpha, seed=seed)


def meta_start(task: Task, recipe: Any, recipe_ref: str, users: Sequence[Examples],
               settings: Settings, work: Path) -> Start:
    """The final meta-recipe of a real fedseed federation among ``users``."""
    from fedseed.bench.fedseed_run import run_fedseed
    from fedseed.federation.config import FederationConfig

    home = Path(tempfile.mkdtemp(dir=work, prefix="meta-"))
    cfg = FederationConfig(
        num_rounds=task.federation_rounds, fraction=1.0, min_nodes=len(users),
        min_replies=1, recipe=recipe_ref, aggregator=task.aggregator, client_trust="tofu",
        auto_keys=True, registry=str(home / "registry"), seed=settings.seed,
        max_steps=task.federation_max_steps, final_personalization=False)
    run = run_fedseed(cfg, list(users), home, parallel=settings.parallel)
    meta = run.meta
    return Start("meta", meta, details={
        "aggregator": task.aggregator, "rounds": task.federation_rounds,
        "optimizer.lr": meta.optimizer.lr, "budget.batch_size": meta.budget.batch_size,
        "meta_bytes": run.meta_envelope_bytes,
        "federation_seconds": round(run.wall_seconds, 1)})


def shared_start(task: Task, recipe: Any, users: Sequence[Examples], settings: Settings,
                 work: Path) -> Start:
    """The shared model of a first-order seed-projection federation among ``users``,
    replayed from its signed chain; cells then train it with the built-in recipe."""
    from fedseed.bench.fedseed_run import run_fedseed
    from fedseed.bench.personalization_runner import (
        fixed_budget,
        replay_projection,
        write_recipe,
    )
    from fedseed.federation.config import FederationConfig
    from fedseed.recipe.overrides import at_constant_lr

    home = Path(tempfile.mkdtemp(dir=work, prefix="shared-"))
    local = fixed_budget(recipe, task.fo_local_steps)
    if task.fo_lr > 0:
        local = at_constant_lr(local, task.fo_lr)
    cfg = FederationConfig(
        num_rounds=task.fo_rounds, fraction=1.0, min_nodes=len(users), min_replies=1,
        recipe=str(write_recipe(local, home / "recipe")), mode="trajectory",
        trajectory_method="first-order", projection_k=task.projection_k,
        projection_dtype=task.projection_dtype, client_trust="tofu", auto_keys=True,
        registry=str(home / "registry"), seed=settings.seed, final_personalization=False)
    run = run_fedseed(cfg, list(users), home, parallel=settings.parallel)
    replayed = replay_projection(run.meta, home)
    state = {k: v.clone() for k, v in replayed.model.state_dict().items()}
    return Start("shared", recipe, initial_state=state, details={
        "rounds": task.fo_rounds, "local_steps": task.fo_local_steps,
        "projection_k": task.projection_k, "projection_dtype": task.projection_dtype,
        "bytes_per_client": run.bytes_down_per_client + run.bytes_up_per_client,
        "federation_seconds": round(run.wall_seconds, 1)})


# --- the run ------------------------------------------------------------------------


def task_recipe(task: Task, work: Path) -> tuple[Any, str]:
    """The task's recipe, and what a federation is told to run (a name or a file)."""
    from fedseed.bench.personalization_runner import with_num_labels, write_recipe
    from fedseed.recipe.builtin import resolve_recipe

    recipe = resolve_recipe(task.recipe)
    if task.dataset == "fortune-categories" and recipe.task.num_labels != task.categories:
        recipe = with_num_labels(recipe, task.categories)
        return recipe, str(write_recipe(recipe, work / "recipes"))
    return recipe, task.recipe


def run_task(task: Task, settings: Settings, pool: Pool, work: Path, on_event: Event
             ) -> dict[str, Any]:
    """Every heat map of one task; JSON-ready."""
    from fedseed.bench.personalization_runner import fixed_budget
    from fedseed.recipe.codec import canonical_bytes

    started = time.perf_counter()
    recipe, recipe_ref = task_recipe(task, work)
    data = cut(load_task_data(task), task, settings.seed)
    on_event(f"{task.name}: reference (the recipe as published, {len(data.pool)} rows)")
    (reference,) = pool.map_with(run_cell, [CellJob(canonical_bytes(recipe), data.pool,
                                                    data.validation, data.test)])
    starts = [Start("default", recipe)]
    users = federation_users(task, data, settings.seed)
    if "meta" in task.starts:
        on_event(f"{task.name}: fedseed federation ({task.aggregator}, "
                 f"{task.federation_rounds} rounds, {len(users)} users)")
        starts.append(meta_start(task, recipe, recipe_ref, users, settings, work))
    if "shared" in task.starts:
        on_event(f"{task.name}: first-order federation ({task.fo_rounds} rounds, "
                 f"K {task.projection_k})")
        starts.append(shared_start(task, recipe, users, settings, work))
    starts = [s for s in starts if s.name in task.starts]
    picks = draws(len(data.pool), task.samples, task.repeats, settings.seed)
    maps = []
    for start in starts:
        on_event(f"{task.name}: {start.name} start, {len(task.samples)} x {len(task.steps)} "
                 f"cells x {task.repeats} draws")
        jobs, keys = [], []
        for n in task.samples:
            for s in task.steps:
                body = canonical_bytes(fixed_budget(start.recipe, s))
                for r, rows in enumerate(picks[n]):
                    jobs.append(CellJob(body, data.pool.take(rows), data.validation,
                                        data.test, start.initial_state))
                    keys.append((n, s, r))
        outcomes = pool.map_with(run_cell, jobs)
        cells: dict[tuple[int, int], list[CellOutcome]] = {}
        for (n, s, _), o in zip(keys, outcomes, strict=True):
            cells.setdefault((n, s), []).append(o)
        maps.append({
            "start": start.name, "details": start.details,
            "cells": [{"samples": n, "steps": s,
                       "accuracy": statistics.fmean(o.test for o in cells[n, s]),
                       "accuracies": [o.test for o in cells[n, s]],
                       "share": statistics.fmean(o.test for o in cells[n, s]) / reference.test,
                       "seconds": statistics.fmean(o.seconds for o in cells[n, s])}
                      for n in task.samples for s in task.steps]})
    return {"task": task.name, "dataset": task.dataset, "recipe": recipe.name,
            "samples": list(task.samples), "steps": list(task.steps),
            "repeats": task.repeats,
            "rows": {"test": len(data.test), "validation": len(data.validation),
                     "pool": len(data.pool), "federation": len(data.federation),
                     "federation_users": len(users)},
            "reference": {"accuracy": reference.test, "steps": reference.steps,
                          "seconds": round(reference.seconds, 2),
                          "max_steps": recipe.budget.max_steps},
            "maps": maps, "claim": claim_verdict(task, maps),
            "seconds": round(time.perf_counter() - started, 1)}


def claim_verdict(task: Task, maps: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per start, the cells under the roadmap's limits (< 100 samples, < 100 steps)
    that reach 95% of the reference, and the smallest budget that does anywhere."""
    out: dict[str, Any] = {}
    for m in maps:
        under = [c for c in m["cells"] if c["samples"] < CLAIM_SAMPLES
                 and c["steps"] < CLAIM_STEPS]
        reached = [c for c in m["cells"] if c["share"] >= CLAIM_SHARE]
        smallest = min(reached, key=lambda c: (c["samples"] * c["steps"], c["samples"]),
                       default=None)
        best_under = max(under, key=lambda c: c["share"], default=None)
        out[m["start"]] = {
            "holds": any(c["share"] >= CLAIM_SHARE for c in under),
            "cells_reaching": [(c["samples"], c["steps"]) for c in under
                               if c["share"] >= CLAIM_SHARE],
            "best_under": None if best_under is None else
            {"samples": best_under["samples"], "steps": best_under["steps"],
             "share": best_under["share"]},
            "smallest_reaching": None if smallest is None else
            {"samples": smallest["samples"], "steps": smallest["steps"],
             "share": smallest["share"]}}
    return out


def run(config: Path, out: Path, on_event: Event, only: Sequence[str] = ()) -> dict[str, Any]:
    """Run every task of ``config`` (or those named in ``only``); write
    ``budget.{json,md,png}`` under ``out``."""
    from fedseed.bench.budget_report import figure, markdown
    from fedseed.bench.report import machine, write_results

    settings, tasks = load_budget_config(config, only)
    if any(t.dataset == "fortune-categories" for t in tasks):
        from fedseed.data.fortunes import FORTUNES_DIR, load_fortunes

        load_fortunes(FORTUNES_DIR)  # fail now, with the install hint
    started = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="fedseed-budget-") as work, \
            Pool(settings.workers) as pool:
        for task in tasks:
            results.append(run_task(task, settings, pool, Path(work), on_event))
    payload = {"machine": machine(), "config": str(config), "settings": settings.__dict__,
               "tasks": results, "seconds": round(time.perf_counter() - started, 1)}
    written = write_results(out, "budget", payload, markdown(payload))
    written.append(figure(payload, out / "budget.png"))
    payload["written"] = [str(p) for p in written]
    return payload


__all__ = ["CellJob", "Task", "claim_verdict", "cut", "draws", "load_budget_config", "run",
           "run_cell"]
