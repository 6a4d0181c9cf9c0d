"""``fedseed bench multi-task``: users with different tasks in one federation (the
seed roadmap's Phase 2.3).

The digits are dealt to ``users`` users (Dirichlet over the digit), and the users
are split round-robin into task groups: digit identity (10 labels), parity (2) and
"at least 5" (2). A share of each group is held out of every federation. Methods,
side by side on the same users:

- ``local-default``: each user trains the built-in recipe for its own task.
- ``fedseed-shared``: ONE fedseed federation of every group (``task-labels``,
  fedseed.meta.tasks): one meta-recipe, then every user personalises with it on its
  own task.
- ``fedseed-per-task``: one federation per task group (per-task meta-recipes).
- ``fedavg`` / ``fedavg+ft`` per task group: FedAvg needs one model, so one task, per
  federation: it runs once per group, on that group's users only.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fedseed.bench.jobs import Job, Pool
from fedseed.bench.personalization_config import build_table, read_toml
from fedseed.data.examples import Examples
from fedseed.errors import FedseedError

COMMAND = "fedseed bench multi-task"
Event = Callable[[str], None]
#: Task name -> (labels, relabelling of the digit).
TASKS: dict[str, tuple[int, Callable[[np.ndarray], np.ndarray]]] = {
    "identity": (10, lambda y: y),
    "parity": (2, lambda y: y % 2),
    "at-least-5": (2, lambda y: (y >= 5).astype(np.int64)),
}
#: The target: every group's personalised mean beats its local-default by this much.
TARGET_POINTS = 3.0


@dataclass(frozen=True)
class Config:
    """``simulations/multi_task.toml``."""

    recipe: str = "digits-mlp"
    tasks: tuple[str, ...] = tuple(TASKS)
    users: int = 30
    alpha: float = 0.5
    held_out: float = 0.2
    rounds: int = 3
    aggregator: str = "sha"
    fedavg_rounds: int = 20
    fedavg_local_steps: int = 20
    per_task: bool = True  # also run fedseed once per task group
    fedavg: bool = True  # also run FedAvg once per task group
    seed: int = 0
    workers: int = 2
    parallel: int = 2

    def __post_init__(self) -> None:
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown or len(self.tasks) < 2:
            raise FedseedError(f"multi-task: tasks {list(self.tasks)} must be two or more of "
                               f"{', '.join(TASKS)}")
        if self.users < 2 * len(self.tasks) or self.rounds < 1:
            raise FedseedError(f"multi-task: users {self.users} must be at least two per "
                               f"task ({2 * len(self.tasks)}) and rounds at least 1")


def load_multi_task_config(path: Path) -> Config:
    """Read the config strictly (unknown keys refused by name)."""
    raw = {k: tuple(v) if isinstance(v, list) else v for k, v in read_toml(path).items()}
    config: Config = build_table(Config, raw, str(path))
    return config


def relabel(examples: Examples, task: str) -> Examples:
    """``examples`` with their digit labels mapped to ``task``'s."""
    assert examples.labels is not None
    _, mapping = TASKS[task]
    return Examples(source=f"{examples.source}:{task}", features=examples.features,
                    labels=mapping(examples.labels).astype(np.int64))


@dataclass
class Users:
    """Every user: examples on its own task, its task, whether it is held out."""

    examples: list[Examples]
    task: list[str]
    held_out: list[bool]

    def of(self, task: str, *, federated: bool | None = None) -> list[int]:
        return [i for i, t in enumerate(self.task) if t == task and (
            federated is None or self.held_out[i] != federated)]


def make_users(cfg: Config) -> Users:
    """Deal the digits (Dirichlet over the digit), tasks round-robin, a seeded share
    of each group held out."""
    import random

    from fedseed.data.builtin import load_builtin_dataset
    from fedseed.data.partition import partition

    parts = partition(load_builtin_dataset("digits"), cfg.users, partitioner="dirichlet",
                      alpha=cfg.alpha, seed=cfg.seed)
    tasks = [cfg.tasks[i % len(cfg.tasks)] for i in range(cfg.users)]
    held = [False] * cfg.users
    rng = random.Random(cfg.seed)
    for task in cfg.tasks:
        group = [i for i, t in enumerate(tasks) if t == task]
        for i in rng.sample(group, max(1, round(cfg.held_out * len(group)))):
            held[i] = True
    return Users([relabel(p, t) for p, t in zip(parts, tasks, strict=True)], tasks, held)


def task_fields(task: str) -> dict[str, Any]:
    return {"task.num_labels": TASKS[task][0]}


def task_recipe(recipe: Any, task: str) -> Any:
    """``recipe`` for ``task`` (the built-in one renamed ``<name>-<task>``)."""
    from fedseed.recipe.codec import canonical_dict, recipe_from_dict
    from fedseed.recipe.overrides import apply_overrides

    data = canonical_dict(apply_overrides(recipe, task_fields(task)))
    data["name"] = f"{recipe.name}-{task}"
    return recipe_from_dict(data)


def _federate(cfg: Config, recipe_ref: str, users: Sequence[Examples],
              tasks: Sequence[dict[str, Any] | None], work: Path, label: str,
              task_labels: str = "") -> Any:
    from fedseed.bench.fedseed_run import run_fedseed
    from fedseed.federation.config import FederationConfig

    home = Path(tempfile.mkdtemp(dir=work, prefix=f"{label}-"))
    fc = FederationConfig(
        num_rounds=cfg.rounds, fraction=1.0, min_nodes=len(users), min_replies=1,
        recipe=recipe_ref, aggregator=cfg.aggregator, client_trust="tofu", auto_keys=True,
        registry=str(home / "registry"), seed=cfg.seed, final_personalization=False,
        task_labels=task_labels)
    return run_fedseed(fc, list(users), home, parallel=cfg.parallel, tasks=list(tasks))


def run(config: Path, out: Path, on_event: Event) -> dict[str, Any]:
    """The whole comparison; writes ``multi_task.{json,md,png}`` under ``out``."""
    from fedseed.bench.fedavg import run_fedavg
    from fedseed.bench.multi_task_report import figure, markdown
    from fedseed.bench.personalization_runner import write_recipe
    from fedseed.bench.report import machine, write_results
    from fedseed.recipe.builtin import resolve_recipe
    from fedseed.recipe.codec import canonical_bytes

    cfg = load_multi_task_config(config)
    started = time.perf_counter()
    recipe = resolve_recipe(cfg.recipe)
    users = make_users(cfg)
    n = len(users.examples)
    per_task = {t: task_recipe(recipe, t) for t in cfg.tasks}
    scores: dict[str, list[float | None]] = {}
    costs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="fedseed-multitask-") as tmp, \
            Pool(cfg.workers) as pool:
        work = Path(tmp)

        def personalise(recipes: Sequence[Any], states: Sequence[Any] | None = None,
                        train: bool = True) -> list[float]:
            jobs = [Job(canonical_bytes(r), users.examples[i],
                        initial_state=None if states is None else states[i], train=train)
                    for i, r in enumerate(recipes)]
            return [o.test for o in pool.map(jobs)]

        on_event("local-default: every user, its own task")
        scores["local-default"] = list(personalise([per_task[t] for t in users.task]))

        fed = [i for i in range(n) if not users.held_out[i]]
        labels = ",".join(str(TASKS[t][0]) for t in cfg.tasks)
        on_event(f"fedseed-shared: one federation of {len(fed)} users, tasks "
                 f"{', '.join(cfg.tasks)}")
        shared = _federate(cfg, cfg.recipe, [users.examples[i] for i in fed],
                           [task_fields(users.task[i]) for i in fed], work, "shared",
                           task_labels=labels)
        scores["fedseed-shared"] = list(personalise(
            [task_recipe(shared.meta, t) for t in users.task]))
        costs["fedseed-shared"] = {
            "bytes_down": shared.bytes_down_per_client + shared.meta_envelope_bytes,
            "bytes_up": shared.bytes_up_per_client,
            "accepted": sum(r["accepted"] for r in shared.rounds),
            "rejected": sum(sum(r["rejected"].values()) for r in shared.rounds),
            "meta": {"optimizer.lr": shared.meta.optimizer.lr,
                     "budget.batch_size": shared.meta.budget.batch_size,
                     "budget.max_steps": shared.meta.budget.max_steps}}

        metas, down, up = {}, [], []
        for t in cfg.tasks if cfg.per_task else ():
            group = users.of(t, federated=True)
            on_event(f"fedseed-per-task: {t}, {len(group)} users")
            ref = str(write_recipe(per_task[t], work / "recipes"))
            run_t = _federate(cfg, ref, [users.examples[i] for i in group],
                              [None] * len(group), work, f"per-task-{t}")
            metas[t] = run_t.meta
            down.append(run_t.bytes_down_per_client + run_t.meta_envelope_bytes)
            up.append(run_t.bytes_up_per_client)
        if cfg.per_task:
            scores["fedseed-per-task"] = list(personalise([metas[t] for t in users.task]))
            costs["fedseed-per-task"] = {"bytes_down": statistics.fmean(down),
                                         "bytes_up": statistics.fmean(up)}

        plain: list[float | None] = [None] * n
        tuned: list[float | None] = [None] * n
        down, up = [], []
        for t in cfg.tasks if cfg.fedavg else ():
            group = users.of(t, federated=True)
            everyone = users.of(t)
            on_event(f"fedavg: {t}, {len(group)} users")
            result = run_fedavg(per_task[t], [users.examples[i] for i in group],
                                rounds=cfg.fedavg_rounds, local_steps=cfg.fedavg_local_steps,
                                seed=cfg.seed, parallel=cfg.parallel)
            per_message = result.bytes_down_per_client / max(1, result.rounds)
            down.append(result.bytes_down_per_client + per_message)
            up.append(result.bytes_up_per_client)
            body = canonical_bytes(per_task[t])
            evaluated = pool.map(Job(body, users.examples[i], initial_state=result.state_dict,
                                     train=False) for i in everyone)
            ft = pool.map(Job(body, users.examples[i], initial_state=result.state_dict)
                          for i in everyone)
            for i, e, f in zip(everyone, evaluated, ft, strict=True):
                plain[i], tuned[i] = e.test, f.test
        if cfg.fedavg:
            scores["fedavg"], scores["fedavg+ft"] = plain, tuned
            costs["fedavg"] = costs["fedavg+ft"] = {"bytes_down": statistics.fmean(down),
                                                    "bytes_up": statistics.fmean(up)}

    groups = []
    for t in cfg.tasks:
        members = users.of(t)
        held = [i for i in members if users.held_out[i]]
        groups.append({
            "task": t, "labels": TASKS[t][0], "users": len(members), "held_out": len(held),
            "methods": {m: {"mean": mean_of(s, members), "held_out_mean": mean_of(s, held)}
                        for m, s in scores.items()}})
    payload = {"machine": machine(), "config": str(config), "settings": cfg.__dict__,
               "groups": groups, "costs": costs,
               "targets": targets(groups), "seconds": round(time.perf_counter() - started, 1)}
    written = write_results(out, "multi_task", payload, markdown(payload))
    written.append(figure(payload, out / "multi_task.png"))
    payload["written"] = [str(p) for p in written]
    return payload


def mean_of(scores: Sequence[float | None], index: Sequence[int]) -> float | None:
    """The mean of ``scores`` at ``index`` (None where nothing was scored)."""
    values = [v for i in index if (v := scores[i]) is not None]
    return statistics.fmean(values) if values else None


def targets(groups: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per task group: fedseed-shared's personalised mean vs its local-default."""
    out = []
    for g in groups:
        mine, default = g["methods"]["fedseed-shared"]["mean"], \
            g["methods"]["local-default"]["mean"]
        gain = 100 * (mine - default)
        out.append({"task": g["task"], "fedseed_shared": mine, "local_default": default,
                    "points": gain, "met": gain >= TARGET_POINTS})
    return out


__all__ = ["TASKS", "Config", "load_multi_task_config", "make_users", "relabel", "run",
           "targets"]
