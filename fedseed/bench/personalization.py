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

import statistics
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fedseed.assemble import parameter_count
from fedseed.bench.jobs import Outcome, Pool
from fedseed.bench.personalization_config import Scenario, Settings, load_config
from fedseed.bench.personalization_report import figures, markdown
from fedseed.bench.personalization_runner import MethodResult, Runner, worst_decile
from fedseed.bench.report import machine, write_results
from fedseed.data.builtin import load_builtin_dataset
from fedseed.data.fortunes import FORTUNES_DIR, load_fortunes
from fedseed.meta import FedEx, Options, TrajectoryAggregator
from fedseed.personalize import personalize_examples
from fedseed.provenance.keys import key_id
from fedseed.provenance.packed import pack
from fedseed.provenance.sign import sign_recipe
from fedseed.recipe.builtin import resolve_recipe
from fedseed.recipe.codec import canonical_dict, recipe_from_dict
from fedseed.recipe.trajectory import SeedUpdate, encode_floats, encode_indices

Event = Callable[[str], None]
#: Share of the federated users that are Byzantine in the poisoning runs.
BYZANTINE_SHARE = 0.2
#: A new user has "reached" the target at 95% of its local-oracle validation metric.
TARGET_SHARE = 0.95


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
    if scenario.first_order:
        on_event(f"{scenario.name}: fedseed-first-order ({scenario.fo_rounds} rounds, "
                 f"K {scenario.projection_k})")
        methods.extend(runner.first_order())
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
        "schedules": schedules(scenario, runner.recipe.optimizer.lr),
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


def schedules(scenario: Scenario, recipe_lr: float) -> dict[str, dict[str, Any]]:
    """What each federated baseline ran (rounds, local steps, lr), so that the report
    can say whether two rows are like for like."""
    out = {"fedavg": {"rounds": scenario.fedavg_rounds,
                      "local_steps": scenario.fedavg_local_steps,
                      "lr": scenario.fedavg_lr or recipe_lr}}
    if scenario.first_order:
        out["first-order"] = {"rounds": scenario.fo_rounds,
                              "local_steps": scenario.fo_local_steps,
                              "lr": scenario.fo_lr or recipe_lr,
                              "projection_k": scenario.projection_k}
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

    key = Ed25519PrivateKey.generate()
    kid = key_id(key.public_key())

    def signed(recipe: Any) -> int:
        return len(pack(sign_recipe(recipe, key, kid)))

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

    meta = TrajectoryAggregator(Options(), pool_size=pool).prepare(recipe)
    rng = np.random.default_rng(0)
    assert meta.trajectory is not None
    meta = meta.model_copy(update={"trajectory": meta.trajectory.model_copy(update={
        "coefficients": encode_floats(rng.standard_normal(pool).astype(np.float32))})})
    update = SeedUpdate(seeds=encode_indices(np.sort(rng.choice(pool, seeds, replace=False))),
                        sums=encode_floats(rng.standard_normal(seeds).astype(np.float32)),
                        steps=50)
    evidence = client.evidence.model_copy(update={"optimizer_stats": []})
    assert meta.trajectory is not None  # the copy above kept the section
    reply = client.model_copy(update={"evidence": evidence, "trajectory": meta.trajectory
                                      .model_copy(update={"coefficients": None,
                                                          "update": update})})
    return signed(meta) + signed(reply)


def run(config: Path, out: Path, on_event: Event, only: Sequence[str] = ()) -> dict[str, Any]:
    """Run every scenario of ``config`` (or those named in ``only``); write
    ``personalization.{json,md,png}`` (and the curves PNG) under ``out``."""
    settings, scenarios = load_config(config, only)
    if any(s.dataset == "fortunes" for s in scenarios):
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

    written = write_results(out, "personalization", payload, markdown(payload))
    written += figures(payload, out)
    payload["written"] = [str(p) for p in written]
    return payload


def _fedavg_overhead(results: Sequence[Mapping[str, Any]]) -> float:
    """Measured FedAvg bytes over raw float32 weights (message framing, keys), from
    the runs of this benchmark; 1.0 when there are none."""
    ratios = []
    for r in results:
        fedavg = next((m for m in r["methods"] if m["method"] == "fedavg"), None)
        if fedavg and fedavg["rounds"]:
            raw = 4 * parameter_count(resolve_recipe(r["recipe"])) * fedavg["rounds"] \
                * r["fraction"]
            ratios.append(fedavg["bytes_up_per_client"] / raw)
    return statistics.median(ratios) if ratios else 1.0


__all__ = ["Scenario", "Settings", "load_config", "run", "steps_to_target", "worst_decile"]
