"""``fedseed bench personalization``: meta-recipes against local training and
Flower's FedAvg, side by side, on the same partitions and seeds, in one run.

Per scenario (``simulations/personalization.toml``) the users are partitioned once;
a seeded share is held out of every federation. Then every method ends the same way,
each user training (or, for FedAvg, evaluating) on its own split, and is scored on
its own test split:

- ``local-default``: the built-in recipe exactly as published.
- ``local-oracle``: a per-user grid search on the user's validation split (a ceiling
  at many times the compute).
- ``fedseed-<aggregator>``: a real fedseed federation (ServerApp + ClientApps under
  Flower's simulation) among the federated users; then every user, held-out ones
  included, personalises with the final meta-recipe.
- ``fedavg``: Flower's FedAvg among the federated users (weights cross the wire); the
  global model is evaluated on every user's test split.
- ``fedavg+ft``: every user fine-tunes FedAvg's global model with the built-in recipe.

Plus, for the headline scenario: 20% Byzantine users with and without robust
aggregation, the Adam warm start on and off, and steps-to-target for new users.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from fedseed.bench.jobs import Job, Outcome, Pool
from fedseed.data.examples import Examples
from fedseed.errors import FedseedError

Event = Callable[[str], None]
#: Share of the federated users that are Byzantine in the poisoning runs.
BYZANTINE_SHARE = 0.2
#: A new user has "reached" the target at 95% of its local-oracle validation metric.
TARGET_SHARE = 0.95


@dataclass(frozen=True)
class Scenario:
    """One row group of the results (see simulations/personalization.toml)."""

    name: str
    dataset: str
    recipe: str
    clients: int = 20
    alpha: float = 0.5
    held_out: float = 0.2
    rounds: int = 4
    fraction: float = 1.0
    aggregators: tuple[str, ...] = ("fedex", "flora", "sha")
    fedavg_rounds: int = 20
    fedavg_local_steps: int = 20
    oracle: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    max_steps: int = 0
    headline: bool = False
    poisoning: bool = False
    poisoning_naive: bool = True
    warm_start: bool = False
    trajectory: bool = False
    trajectory_rounds: int = 10
    pool_size: int = 1024
    zo_steps: int = 100
    seeds_per_step: int = 16
    zo_lr: float = 0.005
    server_lr: float = 2.0
    trajectory_repeats: int = 1

    def __post_init__(self) -> None:
        from fedseed.meta import AGGREGATORS

        problems = [
            (self.dataset in ("digits", "fortunes"), f"dataset '{self.dataset}' is not digits "
                                                     "or fortunes"),
            (2 <= self.clients <= 10_000, f"clients {self.clients} is not in 2..10000"),
            (0.0 <= self.held_out < 1.0, f"held_out {self.held_out} is not in [0, 1)"),
            (0.0 < self.fraction <= 1.0, f"fraction {self.fraction} is not in (0, 1]"),
            (self.rounds >= 1 and self.fedavg_rounds >= 1 and self.fedavg_local_steps >= 1
             and self.trajectory_repeats >= 1,
             "rounds, fedavg_rounds, fedavg_local_steps and trajectory_repeats must be at "
             "least 1"),
            (bool(self.aggregators) and all(a in AGGREGATORS for a in self.aggregators),
             f"aggregators {list(self.aggregators)} must be among {sorted(AGGREGATORS)}"),
        ]
        for ok, message in problems:
            if not ok:
                raise FedseedError(f"scenario '{self.name}': {message}")


@dataclass(frozen=True)
class Settings:
    """The ``[run]`` table."""

    seed: int = 0
    workers: int = 2
    parallel: int = 2


def load_config(path: Path) -> tuple[Settings, list[Scenario]]:
    """Read the benchmark configuration; unknown keys are refused with their name."""
    import tomllib

    try:
        data = tomllib.loads(path.read_text())
    except OSError as e:
        raise FedseedError(f"{path}: cannot read the benchmark configuration ({e.strerror})"
                           ) from e
    except tomllib.TOMLDecodeError as e:
        raise FedseedError(f"{path}: not valid TOML ({e})") from e
    settings = _build(Settings, data.get("run", {}), f"{path} [run]")
    scenarios = []
    for i, raw in enumerate(data.get("scenario", [])):
        raw = dict(raw)
        if "aggregators" in raw:
            raw["aggregators"] = tuple(raw["aggregators"])
        if "oracle" in raw:
            raw["oracle"] = {k: tuple(v) for k, v in raw["oracle"].items()}
        scenarios.append(_build(Scenario, raw, f"{path} scenario {i + 1}"))
    if not scenarios:
        raise FedseedError(f"{path}: no [[scenario]] tables")
    return settings, scenarios


def _build(cls: type, raw: Mapping[str, Any], where: str) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise FedseedError(f"{where}: unknown key '{unknown[0]}' "
                           f"(known: {', '.join(sorted(known))})")
    try:
        return cls(**raw)
    except TypeError as e:
        raise FedseedError(f"{where}: {e}") from e


# --- data -------------------------------------------------------------------------


def users_of(scenario: Scenario, seed: int) -> list[Examples]:
    """The scenario's users, in a fixed order."""
    from fedseed.data.builtin import load_builtin_dataset
    from fedseed.data.partition import partition

    if scenario.dataset == "fortunes":
        from fedseed.data.fortunes import load_fortunes

        users = list(load_fortunes(max_users=scenario.clients).values())
        if len(users) < scenario.clients:
            raise FedseedError(f"scenario '{scenario.name}': only {len(users)} fortunes "
                               f"categories, {scenario.clients} asked")
        return users
    return partition(load_builtin_dataset(scenario.dataset), scenario.clients,
                     partitioner="dirichlet", alpha=scenario.alpha, seed=seed)


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
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def summary(self, higher: bool, held_out: Sequence[int]) -> dict[str, Any]:
        """JSON-ready scores: mean and worst-decile test metric, costs."""
        tests = [o.test for o in self.outcomes]
        steps = [o.steps + (self.federation_steps[i] if self.federation_steps else 0)
                 + (self.extra_steps[i] if self.extra_steps else 0)
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
        from fedseed.recipe.builtin import resolve_recipe
        from fedseed.recipe.search import with_step_budget

        self.s, self.settings, self.pool, self.work = scenario, settings, pool, work
        recipe = resolve_recipe(scenario.recipe)
        if scenario.max_steps:
            recipe = with_step_budget(recipe, scenario.max_steps)
        self.recipe = recipe
        self.higher = recipe.task.higher_is_better
        self.users = users_of(scenario, settings.seed)
        self.federated, self.held_out = split_users(len(self.users), scenario.held_out,
                                                    settings.seed)

    def _recipe_bytes(self, recipe: Any) -> bytes:
        from fedseed.recipe.codec import canonical_bytes

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
        outcomes, extra = [], []
        for i in range(len(self.users)):
            tried = results[i * len(assignments):(i + 1) * len(assignments)]
            best = (max if self.higher else min)(tried, key=lambda o: o.val)
            outcomes.append(best)
            extra.append(float(sum(o.steps for o in tried) - best.steps))
        return MethodResult("local-oracle", outcomes, extra_steps=extra,
                            seconds=time.perf_counter() - started,
                            details={"grid_size": len(assignments)})

    def fedseed(self, aggregator: str, *, byzantine: float = 0.0, robust: bool = True,
                warm_start: bool = False, label: str | None = None) -> MethodResult:
        """A fedseed federation among the federated users, then everyone personalises."""
        from fedseed.bench.fedseed_run import run_fedseed
        from fedseed.federation.config import FederationConfig

        started = time.perf_counter()
        fed_users = [self.users[i] for i in self.federated]
        liars = frozenset(range(round(byzantine * len(fed_users))))
        home = Path(tempfile.mkdtemp(dir=self.work, prefix=f"{aggregator}-"))
        cfg = FederationConfig(
            num_rounds=self.s.rounds, fraction=self.s.fraction, min_nodes=len(fed_users),
            min_replies=1, recipe=self.s.recipe, aggregator=aggregator, robust=robust,
            warm_start=warm_start, client_trust="tofu", auto_keys=True,
            registry=str(home / "registry"), seed=self.settings.seed,
            max_steps=self.s.max_steps, final_personalization=False)
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
        }
        return MethodResult(
            label or f"fedseed-{aggregator}", outcomes,
            # Every user downloads the final meta-recipe once more to personalise.
            bytes_down=run.bytes_down_per_client + run.meta_envelope_bytes,
            bytes_up=run.bytes_up_per_client, rounds=self.s.rounds,
            federation_steps=per_user_fed, seconds=time.perf_counter() - started,
            details=details)

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
                  "federation_steps": per_user_fed, "details": details}
        return (MethodResult("fedseed-trajectory", shared, seconds=shared_seconds, **common),
                MethodResult("fedseed-trajectory+ft", tuned,
                             seconds=time.perf_counter() - started, **common))

    def _trajectory_run(self, repeat: int) -> tuple[Any, list[Outcome]]:
        """One seed-trajectory federation, and every user's score of its shared model."""
        from fedseed.bench.fedseed_run import run_fedseed
        from fedseed.federation.config import FederationConfig

        fed_users = [self.users[i] for i in self.federated]
        home = Path(tempfile.mkdtemp(dir=self.work, prefix="trajectory-"))
        cfg = FederationConfig(
            num_rounds=self.s.trajectory_rounds, fraction=self.s.fraction,
            min_nodes=len(fed_users), min_replies=1, recipe=self.s.recipe,
            mode="trajectory", pool_size=self.s.pool_size, zo_steps=self.s.zo_steps,
            seeds_per_step=self.s.seeds_per_step, zo_lr=self.s.zo_lr,
            server_lr=self.s.server_lr, client_trust="tofu", auto_keys=True,
            registry=str(home / "registry"), seed=self.settings.seed + repeat,
            max_steps=self.s.max_steps, final_personalization=False)
        run = run_fedseed(cfg, fed_users, home, parallel=self.settings.parallel)
        data = self._recipe_bytes(run.meta)
        return run, self.pool.map(Job(data, u, train=False) for u in self.users)

    def fedavg(self) -> tuple[MethodResult, MethodResult]:
        """Flower's FedAvg, then its global model as is and fine-tuned per user."""
        from fedseed.bench.fedavg import run_fedavg

        started = time.perf_counter()
        fed_users = [self.users[i] for i in self.federated]
        result = run_fedavg(self.recipe, fed_users, rounds=self.s.fedavg_rounds,
                            local_steps=self.s.fedavg_local_steps, fraction=self.s.fraction,
                            seed=self.settings.seed, parallel=self.settings.parallel)
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
        common = {"bytes_down": result.bytes_down_per_client + per_message,
                  "bytes_up": result.bytes_up_per_client, "rounds": result.rounds,
                  "federation_steps": per_user_fed}
        plain = MethodResult("fedavg", evaluated, seconds=federation_seconds,
                             details={"federation_seconds": round(result.wall_seconds, 1)},
                             **common)
        tuned = self.personalise_all(self.recipe, initial_state=result.state_dict)
        ft = MethodResult("fedavg+ft", tuned, seconds=time.perf_counter() - started,
                          details={"federation_seconds": round(result.wall_seconds, 1)},
                          **common)
        return plain, ft


def _sum_rejected(rounds: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for r in rounds:
        for reason, count in r["rejected"].items():
            total[reason] = total.get(reason, 0) + count
    return total


# --- analyses ---------------------------------------------------------------------


def steps_to_target(curve: Sequence[tuple[int, float]], target: float, higher: bool
                    ) -> int | None:
    """The first evaluated step whose validation metric reaches ``target``."""
    for step, value in curve:
        if (value >= target) if higher else (value <= target):
            return step
    return None


def target_analysis(meta: MethodResult, default: MethodResult, oracle: MethodResult,
                    users: Sequence[int], higher: bool) -> dict[str, Any]:
    """Optimizer steps a new user needs to reach 95% of its local-oracle validation
    metric, personalising with the meta-recipe versus with the default recipe."""
    rows = []
    for i in users:
        best = oracle.outcomes[i].val
        target = TARGET_SHARE * best if higher else best / TARGET_SHARE
        rows.append((steps_to_target(meta.outcomes[i].curve, target, higher),
                     steps_to_target(default.outcomes[i].curve, target, higher)))
    meta_steps = [m for m, _ in rows if m is not None]
    default_steps = [d for _, d in rows if d is not None]
    both = [(m, d) for m, d in rows if m is not None and d is not None]
    out: dict[str, Any] = {
        "users": len(rows), "method": meta.name,
        "reached_meta": len(meta_steps), "reached_default": len(default_steps),
        "median_steps_meta": statistics.median(meta_steps) if meta_steps else None,
        "median_steps_default": statistics.median(default_steps) if default_steps else None,
    }
    if both:
        out["median_ratio_default_over_meta"] = statistics.median(d / m for m, d in both)
    return out


def mean_curve(outcomes: Sequence[Outcome]) -> list[tuple[int, float]]:
    """Mean validation metric per step over users, a stopped user holding its last value."""
    steps = sorted({s for o in outcomes for s, _ in o.curve})
    out = []
    for step in steps:
        values = []
        for o in outcomes:
            seen = [v for s, v in o.curve if s <= step]
            if seen:
                values.append(seen[-1])
        if values:
            out.append((step, statistics.fmean(values)))
    return out


# --- the run ----------------------------------------------------------------------


def run_scenario(scenario: Scenario, settings: Settings, pool: Pool, work: Path,
                 on_event: Event) -> dict[str, Any]:
    """Every method of one scenario; JSON-ready."""
    started = time.perf_counter()
    runner = Runner(scenario, settings, pool, work)
    higher = runner.higher
    methods: list[MethodResult] = []
    on_event(f"{scenario.name}: local-default")
    default = runner.local_default()
    methods.append(default)
    on_event(f"{scenario.name}: local-oracle")
    oracle = runner.local_oracle()
    methods.append(oracle)
    fedseed_runs = {}
    for name in scenario.aggregators:
        on_event(f"{scenario.name}: fedseed-{name}")
        fedseed_runs[name] = runner.fedseed(name)
        methods.append(fedseed_runs[name])
    on_event(f"{scenario.name}: fedavg")
    methods.extend(runner.fedavg())
    if scenario.trajectory:
        on_event(f"{scenario.name}: fedseed-trajectory ({scenario.trajectory_rounds} rounds)")
        methods.extend(runner.trajectory())
    held = runner.held_out
    rows = [m.summary(higher, held) for m in methods]
    best_name = (max if higher else min)(
        fedseed_runs, key=lambda n: statistics.fmean(o.test for o in fedseed_runs[n].outcomes))
    best = fedseed_runs[best_name]
    out: dict[str, Any] = {
        "scenario": scenario.name, "dataset": scenario.dataset, "recipe": scenario.recipe,
        "metric": runner.recipe.task.metric, "higher_is_better": higher,
        "clients": len(runner.users), "federated": len(runner.federated),
        "held_out": len(held), "alpha": scenario.alpha if scenario.dataset == "digits" else None,
        "max_steps": scenario.max_steps or None, "headline": scenario.headline,
        "rounds": scenario.rounds, "fraction": scenario.fraction,
        "methods": rows, "best_fedseed": f"fedseed-{best_name}",
        "steps_to_target": target_analysis(best, default, oracle, held, higher),
        "curves": {"meta": mean_curve([best.outcomes[i] for i in held]),
                   "default": mean_curve([default.outcomes[i] for i in held]),
                   "oracle_val_mean": statistics.fmean(oracle.outcomes[i].val for i in held)
                   if held else None},
    }
    if scenario.poisoning:
        out["poisoning"] = poisoning(runner, fedseed_runs, on_event)
    if scenario.warm_start:
        on_event(f"{scenario.name}: fedseed-{best_name} with warm start")
        warm = runner.fedseed(best_name, warm_start=True, label=f"fedseed-{best_name}+warm")
        out["warm_start"] = {
            "method": best.name,
            "off": best.summary(higher, held), "on": warm.summary(higher, held),
            "steps_to_target_on": target_analysis(warm, default, oracle, held, higher),
        }
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


def poisoning(runner: Runner, clean: Mapping[str, MethodResult], on_event: Event
              ) -> list[dict[str, Any]]:
    """Each aggregator with 20% Byzantine federated users, robust aggregation on and off.
    Quality = mean test metric of the honest users personalising with the final
    meta-recipe; the clean run is scored on the same users."""
    rows = []
    n_liars = round(BYZANTINE_SHARE * len(runner.federated))
    liars = set(runner.federated[:n_liars])  # run_fedseed makes partitions 0..k-1 liars
    honest = [i for i in range(len(runner.users)) if i not in liars]
    for name, run in clean.items():
        row: dict[str, Any] = {"aggregator": name, "byzantine": n_liars,
                               "clean": statistics.fmean(run.outcomes[i].test for i in honest)}
        for robust in (True, False) if runner.s.poisoning_naive else (True,):
            on_event(f"{runner.s.name}: fedseed-{name}, {n_liars} Byzantine, "
                     f"robust {'on' if robust else 'off'}")
            attacked = runner.fedseed(name, byzantine=BYZANTINE_SHARE, robust=robust)
            key = "robust" if robust else "naive"
            row[key] = statistics.fmean(attacked.outcomes[i].test for i in honest)
            row[f"{key}_meta_config"] = attacked.details["meta_config"]
        rows.append(row)
    return rows


def recipe_bytes_table(fedavg_overhead: float = 1.0) -> list[dict[str, Any]]:
    """Per built-in recipe: fedseed bytes per client per round (a signed FedEx
    meta-recipe down, a signed client recipe up, from a short real run; both packed,
    as the apps send them) against FedAvg's (the float32 weights both ways)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from fedseed.assemble import parameter_count
    from fedseed.data.builtin import load_builtin_dataset
    from fedseed.meta import FedEx
    from fedseed.personalize import personalize_examples
    from fedseed.provenance.envelope import Envelope, sign_envelope
    from fedseed.provenance.keys import key_id
    from fedseed.provenance.packed import pack
    from fedseed.recipe.builtin import resolve_recipe
    from fedseed.recipe.codec import canonical_bytes, canonical_dict, recipe_from_dict

    key = Ed25519PrivateKey.generate()
    kid = key_id(key.public_key())

    def signed(recipe: Any) -> int:
        return len(pack(sign_envelope(Envelope(payload=canonical_bytes(recipe)), key, kid)))

    data = {"tabular": "digits", "image": "digits", "text": "toy-text"}
    rows = []
    for name in ("digits-mlp", "image-cnn-small", "text-bert-tiny", "charlm-gpt2-tiny"):
        recipe = resolve_recipe(name)
        meta = FedEx().prepare(recipe)
        examples = load_builtin_dataset(data[recipe.task.modality])
        client = personalize_examples(recipe, examples.take(list(range(200))),
                                      assignment={"budget.max_steps": 20,
                                                  "budget.eval_every": 10,
                                                  "schedule.warmup_steps": 0},
                                      method="client").recipe
        params = parameter_count(recipe)
        fedseed_bytes = signed(meta) + signed(client)
        trajectory_bytes = _trajectory_round_bytes(recipe, client, signed)
        fedavg_bytes = 2 * 4 * params * fedavg_overhead
        rows.append({"recipe": name, "parameters": params, "meta_recipe_bytes": signed(meta),
                     "client_recipe_bytes": signed(client),
                     "fedseed_bytes_per_round": fedseed_bytes,
                     "fedavg_bytes_per_round": round(fedavg_bytes),
                     "ratio": fedavg_bytes / fedseed_bytes,
                     "trajectory_bytes_per_round": trajectory_bytes,
                     "trajectory_ratio": fedavg_bytes / trajectory_bytes})
        if name == "text-bert-tiny":
            # BERT-tiny as published has a 30,522-id WordPiece vocabulary: the same
            # tensors (so the same recipes, byte for byte in size), 8.6x the weights.
            data_ = canonical_dict(recipe)
            data_["architecture"]["config"]["vocab_size"] = 30_522
            wordpiece = parameter_count(recipe_from_dict(data_))
            fedavg_wp = 2 * 4 * wordpiece * fedavg_overhead
            rows.append({"recipe": "text-bert-tiny, WordPiece vocabulary", "parameters": wordpiece,
                         "meta_recipe_bytes": signed(meta), "client_recipe_bytes": signed(client),
                         "fedseed_bytes_per_round": fedseed_bytes,
                         "fedavg_bytes_per_round": round(fedavg_wp),
                         "ratio": fedavg_wp / fedseed_bytes,
                         "trajectory_bytes_per_round": trajectory_bytes,
                         "trajectory_ratio": fedavg_wp / trajectory_bytes})
    return rows


def _trajectory_round_bytes(recipe: Any, client: Any, signed: Callable[[Any], int],
                            pool: int = 1024, seeds: int = 800) -> int:
    """Seed-trajectory bytes per client per round: a signed meta-recipe with ``pool``
    float32 coefficients down, a signed client recipe with ``seeds`` per-seed sums up
    (100 steps x 16 seeds draw about 810 distinct seeds of 1,024). Sizes do not depend
    on the values, so random ones are used."""
    import numpy as np

    from fedseed.meta import Options, TrajectoryAggregator
    from fedseed.recipe.trajectory import SeedUpdate, encode_floats, encode_indices

    meta = TrajectoryAggregator(Options(), pool_size=pool).prepare(recipe)
    rng = np.random.default_rng(0)
    assert meta.trajectory is not None
    meta = meta.model_copy(update={"trajectory": meta.trajectory.model_copy(update={
        "coefficients": encode_floats(rng.standard_normal(pool).astype(np.float32))})})
    update = SeedUpdate(seeds=encode_indices(np.sort(rng.choice(pool, seeds, replace=False))),
                        sums=encode_floats(rng.standard_normal(seeds).astype(np.float32)),
                        steps=50)
    evidence = client.evidence.model_copy(update={"optimizer_stats": []})
    reply = client.model_copy(update={"evidence": evidence, "trajectory": meta.trajectory
                                      .model_copy(update={"coefficients": None,
                                                          "update": update})})
    return signed(meta) + signed(reply)


def run(config: Path, out: Path, on_event: Event, only: Sequence[str] = ()) -> dict[str, Any]:
    """Run every scenario of ``config`` (or those named in ``only``); write
    ``personalization.{json,md,png}`` (and the curves PNG) under ``out``."""
    from fedseed.bench.report import machine, write_results

    settings, scenarios = load_config(config)
    if only:
        unknown = sorted(set(only) - {s.name for s in scenarios})
        if unknown:
            raise FedseedError(f"--scenario '{unknown[0]}' is not in {config} (there: "
                               f"{', '.join(s.name for s in scenarios)})")
        scenarios = [s for s in scenarios if s.name in only]
    if any(s.dataset == "fortunes" for s in scenarios):
        from fedseed.data.fortunes import FORTUNES_DIR, load_fortunes

        load_fortunes(FORTUNES_DIR)  # fail now, with the install hint, not an hour in
    started = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="fedseed-bench-") as work, \
            Pool(settings.workers) as pool:
        for scenario in scenarios:
            results.append(run_scenario(scenario, settings, pool, Path(work), on_event))
        on_event("bytes per recipe")
        overhead = _fedavg_overhead(results)
        bytes_table = recipe_bytes_table(overhead)
    payload = {"machine": machine(), "config": str(config), "settings": settings.__dict__,
               "scenarios": results, "bytes_per_recipe": bytes_table,
               "seconds": round(time.perf_counter() - started, 1)}
    from fedseed.bench.personalization_report import figures, markdown

    written = write_results(out, "personalization", payload, markdown(payload))
    written += figures(payload, out)
    payload["written"] = [str(p) for p in written]
    return payload


def _fedavg_overhead(results: Sequence[Mapping[str, Any]]) -> float:
    """Measured FedAvg bytes over raw float32 weights (message framing, keys), from
    the runs of this benchmark; 1.0 when there are none."""
    from fedseed.assemble import parameter_count
    from fedseed.recipe.builtin import resolve_recipe

    ratios = []
    for r in results:
        fedavg = next((m for m in r["methods"] if m["method"] == "fedavg"), None)
        if fedavg and fedavg["rounds"]:
            raw = 4 * parameter_count(resolve_recipe(r["recipe"])) * fedavg["rounds"] \
                * r["fraction"]
            ratios.append(fedavg["bytes_up_per_client"] / raw)
    return statistics.median(ratios) if ratios else 1.0


__all__ = ["Scenario", "Settings", "load_config", "run", "steps_to_target", "worst_decile"]
