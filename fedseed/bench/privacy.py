"""``fedseed bench privacy``: privacy against utility, side by side on the same users.

Per scenario (``simulations/privacy.toml``: digits and the fortune-categories text
classification) and per target epsilon (``inf`` = no DP), at delta = 1 / N (N
federated users), every method's mean personalised test accuracy:

- ``recipes``: a fedseed meta-recipe federation (central DP on the evidence), then
  every user trains the final meta-recipe;
- ``trajectory``: first-order seed projection (central DP on the coefficients), then
  every user fine-tunes the replayed shared model;
- ``flower-dp-fedavg``: Flower's FedAvg wrapped in Flower's own
  ``DifferentialPrivacyServerSideFixedClipping`` (accounted by Flower's RDP accountant),
  then every user fine-tunes the global model;
- ``local-default``: no federation at all (the floor every private method should beat).

Every private run's noise multiplier is the smallest whose rounds stay within the
target (the accountant's own bisection, :func:`fedseed.privacy.accountant.calibrate`),
so methods with more rounds pay more noise per round. Clipping bounds come from a pilot
round on the *held-out* users, who never join a federation (so the pilot spends
nothing of the federated users' privacy): the median norm of their first update.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedseed.bench.jobs import Pool
from fedseed.bench.personalization_config import (
    Scenario,
    Settings,
    build_table,
    read_scenarios,
    read_toml,
)
from fedseed.errors import FedseedError

COMMAND = "fedseed bench privacy"
Event = Callable[[str], None]
METHODS = ("recipes", "trajectory", "flower-dp-fedavg")
#: Targets at epsilon = 8: points lost against no DP (recipes, trajectory).
TARGET_LOSS = {"recipes": 1.0, "trajectory": 3.0}


@dataclass(frozen=True)
class Config:
    """``simulations/privacy.toml``'s ``[run]`` table (the scenarios are
    personalization scenarios: same keys)."""

    seed: int = 0
    workers: int = 2
    parallel: int = 2
    epsilons: tuple[float, ...] = (math.inf, 8.0, 4.0, 1.0)
    aggregator: str = "sha"

    def __post_init__(self) -> None:
        if not self.epsilons or any(not e > 0 for e in self.epsilons):
            raise FedseedError(f"privacy: epsilons {list(self.epsilons)} must be positive "
                               "(inf: no DP)")


def load_privacy_config(path: Path, only: Sequence[str] = ()) -> tuple[Config, list[Scenario]]:
    """Read the config strictly (unknown keys refused by name)."""
    data = read_toml(path)
    raw = dict(data.get("run", {}))
    if "epsilons" in raw:
        raw["epsilons"] = tuple(float(e) for e in raw["epsilons"])
    config: Config = build_table(Config, raw, f"{path} [run]")
    return config, read_scenarios(data, path, only)


def pilot_clips(runner: Any) -> dict[str, float]:
    """Median first-update norms on the held-out users: first-order coefficients in
    the mechanism's units (from ``w0``, one round of the scenario's local steps) and
    FedAvg model updates."""
    import numpy as np

    from fedseed.assemble import assemble
    from fedseed.bench.fedavg import exchanged_keys, local_train
    from fedseed.bench.personalization_runner import fixed_budget
    from fedseed.meta.base import Options
    from fedseed.meta.projection import ProjectionAggregator
    from fedseed.privacy.mechanisms import coefficient_weights
    from fedseed.recipe.overrides import at_constant_lr
    from fedseed.recipe.trajectory import decode_values
    from fedseed.trajectory.first_order import fo_train

    s = runner.s
    users = [runner.users[i] for i in runner.held_out] or [runner.users[0]]
    local = fixed_budget(runner.recipe, s.fo_local_steps)
    if s.fo_lr > 0:
        local = at_constant_lr(local, s.fo_lr)
    meta = ProjectionAggregator(Options(seed=runner.settings.seed), total_k=s.projection_k,
                                dtype=s.projection_dtype).prepare(local)
    fo = []
    for u in users:
        done = fo_train(meta, assemble(meta), u)
        p = done.recipe.projection
        assert p is not None and p.update is not None
        fo.append(float(np.linalg.norm(decode_values(p.update, p.dtype)
                                       * coefficient_weights(p))))
    avg_recipe = at_constant_lr(runner.recipe, s.fedavg_lr) if s.fedavg_lr > 0 \
        else runner.recipe
    fedavg = []
    for i, u in enumerate(users):
        model = assemble(avg_recipe)
        keys = exchanged_keys(model)
        before = {k: v.detach().clone() for k, v in model.state_dict().items() if k in keys}
        local_train(avg_recipe, model, u, s.fedavg_local_steps, runner.settings.seed + i)
        after = model.state_dict()
        fedavg.append(math.sqrt(sum(float(((after[k] - before[k]) ** 2).sum())
                                    for k in keys)))
    return {"trajectory": statistics.median(fo), "flower-dp-fedavg": statistics.median(fedavg)}


def run_scenario(scenario: Scenario, cfg: Config, pool: Pool, work: Path,
                 on_event: Event) -> dict[str, Any]:
    """Every method at every epsilon on one scenario's users."""
    from fedseed.bench.fedavg import FedAvgPrivacy
    from fedseed.bench.personalization_runner import Runner
    from fedseed.privacy.accountant import calibrate

    runner = Runner(scenario, Settings(seed=cfg.seed, workers=cfg.workers,
                                       parallel=cfg.parallel), pool, work)
    higher = runner.higher
    n = len(runner.federated)
    delta = 1.0 / n
    on_event(f"{scenario.name}: {n} federated users (delta 1/{n}), "
             f"{len(runner.held_out)} held out for the clipping pilot")
    clips = pilot_clips(runner)
    on_event(f"{scenario.name}: clipping bounds from the pilot: first-order "
             f"{clips['trajectory']:.4g}, FedAvg {clips['flower-dp-fedavg']:.4g}")
    default = runner.local_default().summary(higher, runner.held_out)
    rows: list[dict[str, Any]] = []
    for epsilon in cfg.epsilons:
        private = math.isfinite(epsilon)
        label = f"epsilon {epsilon:g}" if private else "no DP"
        for method in METHODS:
            on_event(f"{scenario.name}, {label}: {method}")
            started = time.perf_counter()
            if method == "recipes":
                dp = {"dp": "central", "dp_epsilon": epsilon, "dp_delta": delta} \
                    if private else {}
                result = runner.fedseed(cfg.aggregator, dp=dp, label="recipes")
                sigma = _sigma(result.details)
                shared = None
            elif method == "trajectory":
                dp = {"dp": "central", "dp_epsilon": epsilon, "dp_delta": delta,
                      "dp_clip": clips["trajectory"]} if private else {}
                plain, result = runner.first_order(dp=dp)
                sigma, shared = _sigma(result.details), plain.summary(higher, [])["mean"]
            else:
                privacy = None
                if private:
                    sigma = calibrate(epsilon, scenario.fedavg_rounds, delta, n)
                    privacy = FedAvgPrivacy(noise_multiplier=sigma,
                                            clip=clips["flower-dp-fedavg"], delta=delta)
                else:
                    sigma = None
                plain, result = runner.fedavg(privacy)
                shared = plain.summary(higher, [])["mean"]
            summary = result.summary(higher, runner.held_out)
            spent = summary.get("privacy", {})
            rows.append({
                "epsilon": epsilon if private else None, "method": method,
                "mean": summary["mean"], "worst10": summary["worst10"],
                "shared_mean": shared, "noise_multiplier": sigma,
                "epsilon_spent": spent.get("epsilon"),
                "clip": clips.get(method) if private else None,
                "bytes_per_client": summary["bytes_down_per_client"]
                + summary["bytes_up_per_client"],
                "seconds": round(time.perf_counter() - started, 1)})
    return {"name": scenario.name, "dataset": scenario.dataset, "recipe": scenario.recipe,
            "federated": n, "held_out": len(runner.held_out), "delta": delta,
            "clips": clips, "local_default": default["mean"], "rows": rows,
            "schedules": {"recipes_rounds": scenario.rounds,
                          "trajectory": f"{scenario.fo_rounds} rounds x "
                                        f"{scenario.fo_local_steps} steps, K "
                                        f"{scenario.projection_k}",
                          "fedavg": f"{scenario.fedavg_rounds} rounds x "
                                    f"{scenario.fedavg_local_steps} steps"}}


def _sigma(details: dict[str, Any]) -> float | None:
    privacy = details.get("privacy")
    return float(privacy["noise_multiplier"]) if privacy else None


def targets(scenario: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets at epsilon 8: points lost against no DP, and each fedseed
    mode against Flower's DP FedAvg at the same epsilon."""
    by = {(r["method"], r["epsilon"]): r for r in scenario["rows"]}
    out = []
    for method in ("recipes", "trajectory"):
        clean, private = by.get((method, None)), by.get((method, 8.0))
        flower = by.get(("flower-dp-fedavg", 8.0))
        if clean is None or private is None:
            continue
        lost = 100 * (clean["mean"] - private["mean"])
        out.append({"scenario": scenario["name"], "method": method, "points_lost": lost,
                    "allowed": TARGET_LOSS[method], "met": lost <= TARGET_LOSS[method],
                    "beats_flower": flower is not None and private["mean"] > flower["mean"],
                    "flower": flower["mean"] if flower else None})
    return out


def run(config: Path, out: Path, on_event: Event, only: Sequence[str] = ()) -> dict[str, Any]:
    """The whole comparison; writes ``privacy.{json,md,png}`` under ``out``."""
    from fedseed.bench.privacy_report import figure, markdown
    from fedseed.bench.report import machine, write_results

    cfg, scenarios = load_privacy_config(config, only)
    started = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="fedseed-privacy-") as tmp, \
            Pool(cfg.workers) as pool:
        for scenario in scenarios:
            results.append(run_scenario(scenario, cfg, pool, Path(tmp), on_event))
    payload: dict[str, Any] = {
        "command": COMMAND, "config": str(config), "machine": machine(),
        "epsilons": [e if math.isfinite(e) else None for e in cfg.epsilons],
        "aggregator": cfg.aggregator, "scenarios": results,
        "targets": [t for s in results for t in targets(s)],
        "seconds": round(time.perf_counter() - started, 1)}
    written = write_results(out, "privacy", payload, markdown(payload))
    written.append(figure(payload, out / "privacy.png"))
    payload["written"] = [str(p) for p in written]
    return payload


__all__ = ["COMMAND", "Config", "METHODS", "load_privacy_config", "pilot_clips", "run",
           "run_scenario", "targets"]
