"""The methods of the personalization and text benchmarks, on one scenario's users.

A :class:`Runner` holds a scenario's users (partitioned once), which of them are
held out of every federation, the worker pool and a temporary folder; each method
returns a :class:`MethodResult` scored on every user's own test split:

- ``local_default`` / ``local_oracle``: the recipe as published / a per-user grid
  search on the user's validation split.
- ``fedseed``: a real fedseed federation (meta-recipes), then every user
  personalises with the final meta-recipe.
- ``trajectory``: zeroth-order seed trajectories (FedKSeed); ``first_order``:
  first-order seed projection (Ferret); both score the replayed shared model as is
  and fine-tuned.
- ``fedavg``: Flower's FedAvg, its global model as is and fine-tuned.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedseed._internal.atomic import atomic_write_bytes
from fedseed.bench.fedavg import FedAvgPrivacy, run_fedavg
from fedseed.bench.fedseed_run import run_fedseed
from fedseed.bench.jobs import Job, Outcome, Pool
from fedseed.bench.personalization_config import Scenario, Settings
from fedseed.data.builtin import load_builtin_dataset
from fedseed.data.examples import Examples
from fedseed.data.fortune_categories import category_users, labelled_fortunes, rows_for_train
from fedseed.data.fortunes import FORTUNES_DIR, load_fortunes
from fedseed.data.partition import partition
from fedseed.errors import FedseedError
from fedseed.federation.config import FederationConfig
from fedseed.provenance.trust import load_trust
from fedseed.provenance.verify import verify_envelope
from fedseed.recipe.builtin import resolve_recipe
from fedseed.recipe.codec import canonical_bytes, canonical_dict, recipe_from_dict
from fedseed.recipe.overrides import at_constant_lr, with_step_budget
from fedseed.registry.store import LocalRegistry
from fedseed.trajectory.chain import shared_model


def users_of(scenario: Scenario, seed: int, max_rows: int = 0) -> list[Examples]:
    """The scenario's users, in a fixed order (``max_rows``: fortune-categories' cap
    on a user's rows, from :func:`fedseed.data.fortune_categories.rows_for_train`)."""
    if scenario.dataset == "fortune-categories":
        labelled = labelled_fortunes(scenario.categories, fortunes_dir(scenario))
        return category_users(labelled.examples, scenario.clients, alpha=scenario.alpha,
                              min_rows=scenario.min_rows, max_rows=max_rows, seed=seed)
    if scenario.dataset == "fortunes":
        users = list(load_fortunes(fortunes_dir(scenario), max_users=scenario.clients).values())
        if len(users) < scenario.clients:
            raise FedseedError(f"scenario '{scenario.name}': only {len(users)} fortunes "
                               f"categories, {scenario.clients} asked")
        return users
    return partition(load_builtin_dataset(scenario.dataset), scenario.clients,
                     partitioner="dirichlet", alpha=scenario.alpha, seed=seed)


def fortunes_dir(scenario: Scenario) -> Path:
    """Where the scenario's fortunes category files are."""
    return Path(scenario.fortunes_dir) if scenario.fortunes_dir else FORTUNES_DIR


def split_users(n: int, held_out: float, seed: int) -> tuple[list[int], list[int]]:
    """(federated, held-out) user indices: a seeded share never joins a federation."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    k = max(1, round(held_out * n)) if held_out > 0 else 0
    return sorted(order[k:]), sorted(order[:k])


# --- methods ----------------------------------------------------------------------


@dataclass
class MethodResult:
    """One method's scores and costs in one scenario."""

    name: str
    outcomes: list[Outcome]  # one per user, in user order
    bytes_down: float = 0.0  # per federated user, whole run
    bytes_up: float = 0.0
    rounds: int = 0
    federation_steps: list[float] = field(default_factory=list)  # per user
    extra_steps: list[float] = field(default_factory=list)  # per user (oracle's grid)
    extra_seconds: list[float] = field(default_factory=list)  # per user, beyond outcomes
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def summary(self, higher: bool, held_out: Sequence[int]) -> dict[str, Any]:
        """JSON-ready scores: mean and worst-decile test metric, costs."""
        tests = [o.test for o in self.outcomes]
        steps = [o.steps + (self.federation_steps[i] if self.federation_steps else 0)
                 + (self.extra_steps[i] if self.extra_steps else 0)
                 for i, o in enumerate(self.outcomes)]
        seconds = [o.seconds + (self.extra_seconds[i] if self.extra_seconds else 0.0)
                   for i, o in enumerate(self.outcomes)]
        held = [self.outcomes[i].test for i in held_out]
        return {
            "method": self.name,
            "mean": statistics.fmean(tests),
            "worst10": worst_decile(tests, higher),
            "held_out_mean": statistics.fmean(held) if held else None,
            "bytes_down_per_client": self.bytes_down,
            "bytes_up_per_client": self.bytes_up,
            "rounds": self.rounds,
            "client_steps": statistics.fmean(steps),
            "client_seconds": round(statistics.fmean(seconds), 2),
            "seconds": round(self.seconds, 1),
            **self.details,
        }


def worst_decile(values: Sequence[float], higher: bool) -> float:
    """The 10th percentile of a higher-is-better metric (90th of a lower-is-better)."""
    ordered = sorted(values, reverse=not higher)
    return ordered[max(0, min(len(ordered) - 1, round(0.1 * (len(ordered) - 1))))]


class Runner:
    """Runs one scenario's methods, sharing its users, pool and temporary folder."""

    def __init__(self, scenario: Scenario, settings: Settings, pool: Pool, work: Path
                 ) -> None:
        self.s, self.settings, self.pool, self.work = scenario, settings, pool, work
        recipe = resolve_recipe(scenario.recipe)
        #: What federations are told to run: the built-in name, or the derived file.
        self.recipe_ref = scenario.recipe
        max_rows = 0
        if scenario.dataset == "fortune-categories":
            recipe = with_num_labels(recipe, scenario.categories)
            self.recipe_ref = str(write_recipe(recipe, work / "recipes"))
            max_rows = rows_for_train(scenario.max_train_rows, recipe.split)
        if scenario.max_steps:
            recipe = with_step_budget(recipe, scenario.max_steps)
        self.recipe = recipe
        self.higher = recipe.task.higher_is_better
        self.users = users_of(scenario, settings.seed, max_rows)
        self.federated, self.held_out = split_users(len(self.users), scenario.held_out,
                                                    settings.seed)

    def _fed_seconds(self, wall: float) -> list[float]:
        """Client seconds a federation charged each user: its wall time times the
        clients Flower ran at once, shared by the federated users (an upper bound:
        the simulation's own overhead is charged too)."""
        share = wall * self.settings.parallel / max(1, len(self.federated))
        return [share if i in self.federated else 0.0 for i in range(len(self.users))]

    def _recipe_bytes(self, recipe: Any) -> bytes:
        return canonical_bytes(recipe)

    def personalise_all(self, recipe: Any, initial_state: Any = None) -> list[Outcome]:
        """Every user trains ``recipe`` (from ``initial_state`` if given)."""
        data = self._recipe_bytes(recipe)
        return self.pool.map(Job(data, u, initial_state=initial_state) for u in self.users)

    def local_default(self) -> MethodResult:
        """The built-in recipe as published, on every user."""
        started = time.perf_counter()
        outcomes = self.personalise_all(self.recipe)
        return MethodResult("local-default", outcomes, seconds=time.perf_counter() - started)

    def local_oracle(self) -> MethodResult:
        """A per-user grid search: the best configuration by the user's validation split."""
        import itertools

        started = time.perf_counter()
        grid = self.s.oracle or {"optimizer.lr": (self.recipe.optimizer.lr,)}
        assignments = [dict(zip(grid, values, strict=True))
                       for values in itertools.product(*grid.values())]
        data = self._recipe_bytes(self.recipe)
        jobs = [Job(data, u, assignment=a) for u in self.users for a in assignments]
        results = self.pool.map(jobs)
        outcomes, extra, extra_seconds = [], [], []
        for i in range(len(self.users)):
            tried = results[i * len(assignments):(i + 1) * len(assignments)]
            best = (max if self.higher else min)(tried, key=lambda o: o.val)
            outcomes.append(best)
            extra.append(float(sum(o.steps for o in tried) - best.steps))
            extra_seconds.append(sum(o.seconds for o in tried) - best.seconds)
        return MethodResult("local-oracle", outcomes, extra_steps=extra,
                            extra_seconds=extra_seconds,
                            seconds=time.perf_counter() - started,
                            details={"grid_size": len(assignments)})

    def fedseed(self, aggregator: str, *, byzantine: float = 0.0, robust: bool = True,
                warm_start: bool = False, label: str | None = None,
                dp: Mapping[str, Any] | None = None) -> MethodResult:
        """A fedseed federation among the federated users, then everyone personalises.
        ``dp``: FederationConfig ``dp*`` settings (fedseed.privacy)."""
        started = time.perf_counter()
        fed_users = [self.users[i] for i in self.federated]
        liars = frozenset(range(round(byzantine * len(fed_users))))
        home = Path(tempfile.mkdtemp(dir=self.work, prefix=f"{aggregator}-"))
        cfg = FederationConfig(
            num_rounds=self.s.rounds, fraction=self.s.fraction, min_nodes=len(fed_users),
            min_replies=1, recipe=self.recipe_ref, aggregator=aggregator, robust=robust,
            warm_start=warm_start, client_trust="tofu", auto_keys=True,
            registry=str(home / "registry"), seed=self.settings.seed,
            max_steps=self.s.max_steps, final_personalization=False, **(dp or {}))
        run = run_fedseed(cfg, fed_users, home, byzantine=liars, parallel=self.settings.parallel)
        outcomes = self.personalise_all(run.meta)
        per_user_fed = [0.0] * len(self.users)
        for i in self.federated:
            per_user_fed[i] = run.steps_per_client
        details = {
            "meta_config": {"optimizer.lr": run.meta.optimizer.lr,
                            "budget.batch_size": run.meta.budget.batch_size,
                            "budget.max_steps": run.meta.budget.max_steps,
                            "optimizer.weight_decay": run.meta.optimizer.weight_decay},
            "meta_bytes": run.meta_envelope_bytes,
            "federation_seconds": round(run.wall_seconds, 1),
            "rejected": _sum_rejected(run.rounds),
            "byzantine": len(liars), "robust": robust, "warm_start": warm_start,
            **({"privacy": run.meta.privacy.model_dump(mode="json")}
               if run.meta.privacy is not None else {}),
        }
        return MethodResult(
            label or f"fedseed-{aggregator}", outcomes,
            # Every user downloads the final meta-recipe once more to personalise.
            bytes_down=run.bytes_down_per_client + run.meta_envelope_bytes,
            bytes_up=run.bytes_up_per_client, rounds=self.s.rounds,
            federation_steps=per_user_fed, extra_seconds=self._fed_seconds(run.wall_seconds),
            seconds=time.perf_counter() - started, details=details)

    def trajectory(self) -> tuple[MethodResult, MethodResult]:
        """Seed-trajectory mode among the federated users; then every user evaluates
        the replayed shared model as is and fine-tunes it with the recipe. With
        ``trajectory_repeats`` > 1 the federation runs again (new keys, so new seed
        draws) and only the shared model is scored: the rows are the first run's,
        ``details.repeat_means`` every run's mean."""
        started = time.perf_counter()
        run, shared = self._trajectory_run(0)
        shared_seconds = time.perf_counter() - started
        repeat_means = [statistics.fmean(o.test for o in shared)]
        for repeat in range(1, self.s.trajectory_repeats):
            _, again = self._trajectory_run(repeat)
            repeat_means.append(statistics.fmean(o.test for o in again))
        tuned = self.personalise_all(run.meta)
        per_user_fed = [0.0] * len(self.users)
        for i in self.federated:
            per_user_fed[i] = run.steps_per_client
        t = run.meta.trajectory
        assert t is not None
        details = {"meta_bytes": run.meta_envelope_bytes,
                   "federation_seconds": round(run.wall_seconds, 1),
                   "pool_size": t.pool_size, "zo_steps_per_round": t.steps,
                   "seeds_per_step": t.seeds_per_step,
                   "server_lr": t.server_lr, "repeat_means": repeat_means,
                   "forward_passes_per_client": 2 * t.steps * t.seeds_per_step
                   * self.s.trajectory_rounds * self.s.fraction}
        common = {"bytes_down": run.bytes_down_per_client + run.meta_envelope_bytes,
                  "bytes_up": run.bytes_up_per_client, "rounds": self.s.trajectory_rounds,
                  "federation_steps": per_user_fed, "details": details,
                  "extra_seconds": self._fed_seconds(run.wall_seconds)}
        return (MethodResult("fedseed-trajectory", shared, seconds=shared_seconds, **common),
                MethodResult("fedseed-trajectory+ft", tuned,
                             seconds=time.perf_counter() - started, **common))

    def _trajectory_run(self, repeat: int) -> tuple[Any, list[Outcome]]:
        """One seed-trajectory federation, and every user's score of its shared model."""
        fed_users = [self.users[i] for i in self.federated]
        home = Path(tempfile.mkdtemp(dir=self.work, prefix="trajectory-"))
        cfg = FederationConfig(
            num_rounds=self.s.trajectory_rounds, fraction=self.s.fraction,
            min_nodes=len(fed_users), min_replies=1, recipe=self.recipe_ref,
            mode="trajectory", pool_size=self.s.pool_size, zo_steps=self.s.zo_steps,
            seeds_per_step=self.s.seeds_per_step, zo_lr=self.s.zo_lr,
            server_lr=self.s.server_lr, client_trust="tofu", auto_keys=True,
            registry=str(home / "registry"), seed=self.settings.seed + repeat,
            max_steps=self.s.max_steps, final_personalization=False)
        run = run_fedseed(cfg, fed_users, home, parallel=self.settings.parallel)
        data = self._recipe_bytes(run.meta)
        return run, self.pool.map(Job(data, u, train=False) for u in self.users)

    def fedavg(self, privacy: FedAvgPrivacy | None = None
               ) -> tuple[MethodResult, MethodResult]:
        """Flower's FedAvg (under ``privacy``: wrapped in Flower's own central DP), then
        its global model as is and fine-tuned per user."""
        started = time.perf_counter()
        fed_users = [self.users[i] for i in self.federated]
        local = at_constant_lr(self.recipe, self.s.fedavg_lr) if self.s.fedavg_lr > 0 \
            else self.recipe
        result = run_fedavg(local, fed_users, rounds=self.s.fedavg_rounds,
                            local_steps=self.s.fedavg_local_steps, fraction=self.s.fraction,
                            seed=self.settings.seed, parallel=self.settings.parallel,
                            privacy=privacy)
        data = self._recipe_bytes(self.recipe)
        evaluated = self.pool.map(Job(data, u, initial_state=result.state_dict, train=False)
                                  for u in self.users)
        federation_seconds = time.perf_counter() - started
        per_user_fed = [0.0] * len(self.users)
        for i in self.federated:
            per_user_fed[i] = result.steps_per_client
        # Every user then downloads the final global model once more (as fedseed users
        # download the final meta-recipe): one model message's worth.
        per_message = result.bytes_down_per_client / max(1e-9, result.rounds * self.s.fraction)
        common: dict[str, Any] = {"bytes_down": result.bytes_down_per_client + per_message,
                                  "bytes_up": result.bytes_up_per_client,
                                  "rounds": result.rounds, "federation_steps": per_user_fed,
                                  "extra_seconds": self._fed_seconds(result.wall_seconds)}
        details = {"federation_seconds": round(result.wall_seconds, 1),
                   **({"privacy": result.privacy} if result.privacy else {})}
        plain = MethodResult("fedavg", evaluated, seconds=federation_seconds,
                             details=details, **common)
        tuned = self.personalise_all(self.recipe, initial_state=result.state_dict)
        ft = MethodResult("fedavg+ft", tuned, seconds=time.perf_counter() - started,
                          details=details, **common)
        return plain, ft

    def first_order(self, dp: Mapping[str, Any] | None = None
                    ) -> tuple[MethodResult, MethodResult]:
        """First-order seed projection (Ferret) among the federated users, through the
        real apps (``trajectory-method = "first-order"``): ``fo_rounds`` rounds of
        ``fo_local_steps`` steps of the recipe's optimizer from the shared model, each
        update projected on ``projection_k`` seeded coefficients. Then every user
        evaluates the replayed shared model as is, and fine-tunes it with the recipe."""
        started = time.perf_counter()
        fed_users = [self.users[i] for i in self.federated]
        home = Path(tempfile.mkdtemp(dir=self.work, prefix="first-order-"))
        local = fixed_budget(self.recipe, self.s.fo_local_steps)
        if self.s.fo_lr > 0:
            local = at_constant_lr(local, self.s.fo_lr)
        cfg = FederationConfig(
            num_rounds=self.s.fo_rounds, fraction=self.s.fraction, min_nodes=len(fed_users),
            min_replies=1, recipe=str(write_recipe(local, home / "recipe")),
            mode="trajectory", trajectory_method="first-order",
            projection_k=self.s.projection_k, projection_lr=self.s.projection_lr,
            projection_dtype=self.s.projection_dtype,
            projection_basis=self.s.projection_basis,
            client_trust="tofu", auto_keys=True, registry=str(home / "registry"),
            seed=self.settings.seed, final_personalization=False, **(dp or {}))
        run = run_fedseed(cfg, fed_users, home, parallel=self.settings.parallel)
        replayed = replay_projection(run.meta, home)
        state = {k: v.clone() for k, v in replayed.model.state_dict().items()}
        data = self._recipe_bytes(self.recipe)
        shared = self.pool.map(Job(data, u, initial_state=state, train=False)
                               for u in self.users)
        shared_seconds = time.perf_counter() - started
        tuned = self.personalise_all(self.recipe, initial_state=state)
        per_user_fed = [run.steps_per_client if i in self.federated else 0.0
                        for i in range(len(self.users))]
        p = run.meta.projection
        assert p is not None
        details = {"meta_bytes": run.meta_envelope_bytes,
                   "federation_seconds": round(run.wall_seconds, 1),
                   "projection_k": p.total_k, "server_lr": p.server_lr,
                   "local_steps_per_round": self.s.fo_local_steps,
                   "bases": sorted({g.basis for g in p.groups}),
                   "replay_seconds": round(replayed.seconds, 2),
                   "replayed_rounds": replayed.rounds,
                   **({"privacy": run.meta.privacy.model_dump(mode="json")}
                      if run.meta.privacy is not None else {})}
        # A device that missed the run fetches the chain to replay it: counted down.
        common: dict[str, Any] = {
            "bytes_down": run.bytes_down_per_client + run.meta_envelope_bytes,
            "bytes_up": run.bytes_up_per_client, "rounds": self.s.fo_rounds,
            "federation_steps": per_user_fed, "details": details,
            "extra_seconds": self._fed_seconds(run.wall_seconds)}
        return (MethodResult("fedseed-first-order", shared, seconds=shared_seconds, **common),
                MethodResult("fedseed-first-order+ft", tuned,
                             seconds=time.perf_counter() - started, **common))


def with_num_labels(recipe: Any, num_labels: int) -> Any:
    """``recipe`` for a ``num_labels``-way task, renamed ``<name>-<num_labels>``."""
    data = canonical_dict(recipe)
    data["task"]["num_labels"] = num_labels
    data["name"] = f"{recipe.name}-{num_labels}"
    return recipe_from_dict(data)


def fixed_budget(recipe: Any, steps: int) -> Any:
    """``recipe`` training exactly ``steps`` steps (no early stopping, no warmup
    beyond them, one evaluation at the end): a federated round's local work."""
    data = canonical_dict(recipe)
    data["budget"].update({"max_steps": steps, "eval_every": steps, "early_stopping": None})
    data["schedule"]["warmup_steps"] = min(data["schedule"].get("warmup_steps", 0), steps - 1)
    return recipe_from_dict(data)


def write_recipe(recipe: Any, folder: Path) -> Path:
    """``recipe`` as ``folder/<name>.json`` (canonical JSON), for a federation to name."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{recipe.name}.json"
    atomic_write_bytes(path, canonical_bytes(recipe))
    return path


def replay_projection(meta: Any, home: Path) -> Any:
    """The shared model of a first-order run's final meta-recipe, replayed from ``w0``
    with the chain its server published in ``home/registry``, each link verified as
    signed by a key the run trusted for the ``server`` role."""
    trust = load_trust(home)
    registry = LocalRegistry(home / "registry")

    def fetch(digest: str) -> Any:
        return verify_envelope(registry.fetch(digest), trust, role="server",
                               source=f"meta-recipe {digest}").recipe

    return shared_model(meta, fetch)


def _sum_rejected(rounds: Sequence[Any]) -> dict[str, int]:
    total: dict[str, int] = {}
    for r in rounds:
        for reason, count in r["rejected"].items():
            total[reason] = total.get(reason, 0) + count
    return total


__all__ = ["MethodResult", "Runner", "fixed_budget", "fortunes_dir", "replay_projection",
           "split_users", "users_of", "with_num_labels", "worst_decile", "write_recipe"]
