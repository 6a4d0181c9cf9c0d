"""``fedseed bench text``: federated real-text benchmarks, every method side by side
on the same partitions and seeds, in one run (``simulations/text.toml``).

Two kinds of scenario, both on Debian's fortunes, both built on the personalization
bench's :class:`~fedseed.bench.personalization_runner.Runner`:

- ``fortune-categories``: each quote labelled with its category (the 10 largest);
  users mix categories by a Dirichlet draw each
  (:mod:`fedseed.data.fortune_categories`), at most ``max_train_rows`` training
  rows per user; a seeded share of users is held out of every federation. The
  recipe (text-ngram) is derived with ``task.num_labels`` = the categories.
- ``fortunes``: the char-LM, one user per category, as the personalization bench has it.

Methods (``methods`` in a scenario; all by default): ``tfidf`` (TF-IDF char 2-4 +
logistic regression per user), ``tfidf-pooled`` (one such model on the federated
users' pooled train rows: what sharing raw data would give), ``local-default``,
``local-oracle``, ``fedseed`` (one row per aggregator), ``fedavg`` (Flower FedAvg and
FedAvg + fine-tuning), ``trajectory`` (zeroth-order seeds, shared and +ft) and
``first-order`` (first-order seed projection, shared and +ft). Every method is scored
on each user's own test split; bytes are per client over the whole run, down + up,
counted on the messages; client compute is optimizer steps and seconds.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fedseed.bench.jobs import Pool
from fedseed.bench.personalization_config import Scenario, Settings, load_config
from fedseed.bench.personalization_runner import MethodResult, Runner, fortunes_dir
from fedseed.bench.report import machine, write_results
from fedseed.bench.text_baselines import local_tfidf, pooled_tfidf
from fedseed.bench.text_report import figure, markdown
from fedseed.data.examples import split_examples
from fedseed.data.fortunes import load_fortunes
from fedseed.errors import FedseedError

Event = Callable[[str], None]
#: Method groups a scenario may name, in the order they run.
METHODS = ("tfidf", "tfidf-pooled", "local-default", "local-oracle", "fedseed", "fedavg",
           "trajectory", "first-order")
#: Rows that end with each user's own model (personalised), per method family.
PERSONALISED_FEDSEED = ("fedseed-trajectory+ft", "fedseed-first-order+ft")


def methods_of(scenario: Scenario) -> tuple[str, ...]:
    """The scenario's method groups (all of :data:`METHODS` when it names none)."""
    wanted = scenario.methods or METHODS
    unknown = sorted(set(wanted) - set(METHODS))
    if unknown:
        raise FedseedError(f"scenario '{scenario.name}': unknown method '{unknown[0]}' "
                           f"(known: {', '.join(METHODS)})")
    if scenario.dataset != "fortune-categories" and {"tfidf", "tfidf-pooled"} & set(wanted):
        raise FedseedError(f"scenario '{scenario.name}': the TF-IDF baselines classify; "
                           f"dataset '{scenario.dataset}' has no labels")
    return tuple(m for m in METHODS if m in wanted)


def tfidf_rows(runner: Runner, pooled: bool) -> MethodResult:
    """TF-IDF + logistic regression, per user (or on the pooled federated rows)."""
    started = time.perf_counter()
    split = runner.recipe.split
    if not pooled:
        outcomes = local_tfidf(runner.users, split)
        return MethodResult("tfidf-lr-local", outcomes, seconds=time.perf_counter() - started)
    outcomes, fit = pooled_tfidf(runner.users, runner.federated, split)
    raw = statistics.fmean(_raw_bytes(runner, i) for i in runner.federated)
    return MethodResult("tfidf-lr-pooled", outcomes, bytes_up=raw,
                        seconds=time.perf_counter() - started,
                        details={"pooled_users": len(runner.federated),
                                 "fit_seconds": round(fit, 1),
                                 "bytes_are": "raw training rows (UTF-8 text + label) up"})


def _raw_bytes(runner: Runner, user: int) -> float:
    """UTF-8 bytes of a user's training rows (text and a 1-byte label each)."""
    train = split_examples(runner.users[user], runner.recipe.split).train
    return float(sum(len(t.encode()) + 1 for t in train.texts or ()))


def partition_stats(runner: Runner) -> dict[str, Any]:
    """Rows per user and how mixed each user's categories are."""
    import numpy as np

    sizes = [len(u) for u in runner.users]
    out: dict[str, Any] = {"rows_min": min(sizes), "rows_mean": statistics.fmean(sizes),
                           "rows_max": max(sizes)}
    if runner.s.dataset == "fortune-categories":
        trains = [len(split_examples(u, runner.recipe.split).train) for u in runner.users]
        shares = [np.bincount(u.labels, minlength=runner.s.categories) / len(u)
                  for u in runner.users if u.labels is not None]
        out.update({"train_rows_max": max(trains), "train_rows_mean": statistics.fmean(trains),
                    "categories_over_5pct_mean": statistics.fmean(
                        float((s >= 0.05).sum()) for s in shares),
                    "largest_category_share_mean": statistics.fmean(float(s.max())
                                                                    for s in shares)})
    return out


def run_scenario(scenario: Scenario, settings: Settings, pool: Pool, work: Path,
                 on_event: Event) -> dict[str, Any]:
    """Every wanted method of one scenario; JSON-ready."""
    started = time.perf_counter()
    wanted = methods_of(scenario)
    runner = Runner(scenario, settings, pool, work)
    methods: list[MethodResult] = []

    def step(label: str) -> None:
        on_event(f"{scenario.name}: {label}")

    for pooled, key in ((False, "tfidf"), (True, "tfidf-pooled")):
        if key in wanted:
            step(key)
            methods.append(tfidf_rows(runner, pooled))
    if "local-default" in wanted:
        step("local-default")
        methods.append(runner.local_default())
    if "local-oracle" in wanted:
        step("local-oracle")
        methods.append(runner.local_oracle())
    if "fedseed" in wanted:
        for name in scenario.aggregators:
            step(f"fedseed-{name}")
            methods.append(runner.fedseed(name))
    if "fedavg" in wanted:
        step(f"fedavg ({scenario.fedavg_rounds} rounds)")
        methods.extend(runner.fedavg())
    if "trajectory" in wanted:
        step(f"fedseed-trajectory ({scenario.trajectory_rounds} rounds)")
        methods.extend(runner.trajectory())
    if "first-order" in wanted:
        step(f"fedseed-first-order ({scenario.fo_rounds} rounds, K {scenario.projection_k})")
        methods.extend(runner.first_order())
    rows = [m.summary(runner.higher, runner.held_out) for m in methods]
    return {
        "scenario": scenario.name, "dataset": scenario.dataset,
        "recipe": runner.recipe.name, "recipe_ref": scenario.recipe,
        "metric": runner.recipe.task.metric, "higher_is_better": runner.higher,
        "num_labels": runner.recipe.task.num_labels if runner.recipe.task.kind ==
        "classification" else None,
        "clients": len(runner.users), "federated": len(runner.federated),
        "held_out": len(runner.held_out),
        "alpha": scenario.alpha if scenario.dataset != "fortunes" else None,
        "max_train_rows": scenario.max_train_rows
        if scenario.dataset == "fortune-categories" else None,
        "max_steps": scenario.max_steps or None, "rounds": scenario.rounds,
        "fraction": scenario.fraction, "methods_run": list(wanted),
        "settings": _scenario_settings(scenario), "partition": partition_stats(runner),
        "methods": rows, "seconds": round(time.perf_counter() - started, 1),
    }


def _scenario_settings(s: Scenario) -> dict[str, Any]:
    return {"aggregators": list(s.aggregators), "fedavg_rounds": s.fedavg_rounds,
            "fedavg_local_steps": s.fedavg_local_steps,
            "oracle": {k: list(v) for k, v in s.oracle.items()},
            "trajectory_rounds": s.trajectory_rounds, "pool_size": s.pool_size,
            "zo_steps": s.zo_steps, "seeds_per_step": s.seeds_per_step, "zo_lr": s.zo_lr,
            "server_lr": s.server_lr, "fo_rounds": s.fo_rounds,
            "fo_local_steps": s.fo_local_steps, "projection_k": s.projection_k,
            "projection_lr": s.projection_lr, "projection_dtype": s.projection_dtype,
            "fo_lr": s.fo_lr}


def run(config: Path, out: Path, on_event: Event, only: Sequence[str] = ()) -> dict[str, Any]:
    """Run every scenario of ``config`` (or those named in ``only``); write
    ``text.{json,md,png}`` under ``out``."""
    settings, scenarios = load_config(config, only)
    for scenario in scenarios:  # refuse a bad method or a missing folder now, not an
        methods_of(scenario)    # hour in (with the install hint)
        load_fortunes(fortunes_dir(scenario))
    started = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="fedseed-bench-text-") as work, \
            Pool(settings.workers) as pool:
        for scenario in scenarios:
            results.append(run_scenario(scenario, settings, pool, Path(work), on_event))
    payload = {"machine": machine(), "config": str(config), "settings": settings.__dict__,
               "scenarios": results, "seconds": round(time.perf_counter() - started, 1)}
    written = write_results(out, "text", payload, markdown(payload))
    written.append(figure(payload, out / "text.png"))
    payload["written"] = [str(p) for p in written]
    return payload


__all__ = ["METHODS", "methods_of", "partition_stats", "run", "run_scenario", "tfidf_rows"]
