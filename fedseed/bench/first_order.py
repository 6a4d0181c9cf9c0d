"""``fedseed bench trajectory --first-order``: first-order seed projection against
FedAvg on digits (the issue-12 target: a replayed shared model >= 0.96 mean test
accuracy at >= 20x fewer bytes per client than FedAvg over the run).

The projection federation runs in this process on the library the apps use
(:func:`fedseed.trajectory.first_order.fo_train`, the ``projection`` aggregator,
:func:`fedseed.trajectory.chain.shared_model`); every reply and meta-recipe is signed
and packed as the apps send it, and those packed bytes are what is counted. FedAvg is
Flower's own (:func:`fedseed.bench.fedavg.run_fedavg`), bytes counted on its messages.
Both start from the same ``w0`` and take the recipe's optimizer for ``local_steps``
steps per round on the same partitions; both are scored on every user's test split.
Catch-up is measured at the end: a new device replays the whole chain from ``w0``,
one that missed half the rounds replays the rest.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fedseed.assemble import assemble
from fedseed.bench.fedavg import run_fedavg
from fedseed.bench.report import machine, save_figure, write_results
from fedseed.data.builtin import load_builtin_dataset
from fedseed.data.examples import split_examples
from fedseed.data.partition import partition
from fedseed.data.tensors import to_tensors
from fedseed.meta import AggregatorState, ClientReply, Options
from fedseed.meta.projection import ProjectionAggregator
from fedseed.provenance.packed import pack
from fedseed.provenance.sign import sign_recipe
from fedseed.recipe.builtin import resolve_recipe
from fedseed.recipe.codec import recipe_digest
from fedseed.recipe.overrides import at_constant_lr
from fedseed.trajectory.chain import ChainCache, shared_model
from fedseed.trajectory.first_order import fo_train


@dataclass(frozen=True)
class FirstOrderSettings:
    """Users, rounds and local steps of both federations; K and server lr of projection."""

    recipe: str = "digits-mlp"
    users: int = 20
    alpha: float = 0.5
    rounds: int = 40
    local_steps: int = 10
    k: int = 600
    server_lr: float = 1.0
    #: Local learning rate of both federations (None: the recipe's). Each round's few
    #: local steps run at a constant rate: the recipe's warmup would span them all.
    #: 0.01 was picked on the users' validation splits (docs/results/trajectory_first_order.md).
    lr: float | None = 0.01
    #: Wire type of the coefficients (float16: half the bytes).
    dtype: str = "float16"
    #: The aggregator's robust mean (median-norm clipping, capped weights).
    robust: bool = True
    seed: int = 0
    fedavg: bool = True


def _local_recipe(settings: FirstOrderSettings) -> Any:
    base = at_constant_lr(resolve_recipe(settings.recipe), settings.lr)
    return base.model_copy(update={
        "budget": base.budget.model_copy(update={
            "max_steps": settings.local_steps, "early_stopping": None,
            "eval_every": settings.local_steps})})


def _shared_accuracy(model: Any, recipe: Any, users: list[Any]) -> float:
    from fedseed.train.objectives import evaluate

    return statistics.fmean(
        float(evaluate(model, to_tensors(split_examples(u, recipe.split).test, recipe),
                       recipe)[1]) for u in users)


def run_projection(settings: FirstOrderSettings, users: list[Any],
                   on_round: Callable[[int, float], None] | None = None) -> dict[str, Any]:
    """The first-order projection federation; per-round shared accuracy and bytes."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()

    def packed(recipe: Any) -> int:
        return len(pack(sign_recipe(recipe, key, "k")))

    agg = ProjectionAggregator(Options(robust=settings.robust, seed=settings.seed),
                               total_k=settings.k, server_lr=settings.server_lr,
                               dtype=settings.dtype)
    meta, state, cache = agg.prepare(_local_recipe(settings)), AggregatorState(), ChainCache()
    chain = {recipe_digest(meta): meta}
    history, down, up, client_seconds = [], 0, 0, 0.0
    started = time.perf_counter()
    for round_ in range(1, settings.rounds + 1):
        shared = shared_model(meta, None, cache)
        start_state = cache.states[recipe_digest(meta)]
        down += packed(meta) * len(users)
        replies = []
        for node, examples in enumerate(users):
            shared.model.load_state_dict(start_state)
            done = fo_train(meta, shared.model, examples)
            client_seconds += done.seconds
            up += packed(done.recipe)
            replies.append(ClientReply(done.recipe, recipe_digest(done.recipe), node, {}))
        meta, state = agg(meta, replies, state)
        chain[recipe_digest(meta)] = meta
        accuracy = _shared_accuracy(shared_model(meta, None, cache).model, meta, users)
        history.append({"round": round_, "shared_accuracy": round(accuracy, 4),
                        "clipped": state.values["clipped"]})
        if on_round is not None:
            on_round(round_, accuracy)
    new = shared_model(meta, chain.__getitem__)  # a new device: the whole chain from w0
    half = ChainCache()
    middle = next(m for m in chain.values()
                  if m.projection is not None and m.projection.round == settings.rounds // 2)
    shared_model(middle, chain.__getitem__, half)
    missed = shared_model(meta, chain.__getitem__, half)
    assert meta.projection is not None  # the projection aggregator keeps the section
    n = len(users)
    return {
        "history": history, "final_shared_accuracy": history[-1]["shared_accuracy"],
        "bytes_down_per_client": down / n, "bytes_up_per_client": up / n,
        "bytes_per_client": (down + up) / n, "client_seconds_per_round":
            client_seconds / (n * settings.rounds),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "coefficients_per_round": meta.projection.total_k,
        "groups": [g.model_dump() for g in meta.projection.groups],
        "catch_up": {
            "new_device": {"rounds": new.rounds, "fetched_bytes": new.fetched_bytes,
                           "seconds": round(new.seconds, 3)},
            "missed_half": {"rounds": missed.rounds, "fetched_bytes": missed.fetched_bytes,
                            "seconds": round(missed.seconds, 3)}},
    }


def run(out: Path, settings: FirstOrderSettings,
        on_step: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Both federations on the same partitions; write ``trajectory_first_order.*``."""
    step = on_step or (lambda text: None)
    recipe = _local_recipe(settings)
    users = list(partition(load_builtin_dataset("digits"), settings.users,
                           partitioner="dirichlet", alpha=settings.alpha, seed=settings.seed))
    projection = run_projection(settings, users, lambda r, a: step(
        f"first-order round {r}/{settings.rounds}: shared {a:.3f}"))
    fedavg = None
    if settings.fedavg:
        step("FedAvg")
        done = run_fedavg(recipe, users, rounds=settings.rounds,
                          local_steps=settings.local_steps, seed=settings.seed)
        model = assemble(recipe)
        model.load_state_dict(done.state_dict)
        fedavg = {"final_shared_accuracy": round(_shared_accuracy(model, recipe, users), 4),
                  "bytes_down_per_client": done.bytes_down_per_client,
                  "bytes_up_per_client": done.bytes_up_per_client,
                  "bytes_per_client": done.bytes_down_per_client + done.bytes_up_per_client,
                  "wall_seconds": round(done.wall_seconds, 1)}
    payload: dict[str, Any] = {"settings": asdict(settings), "machine": machine(),
                               "first_order": projection, "fedavg": fedavg}
    if fedavg is not None:
        payload["ratio"] = fedavg["bytes_per_client"] / projection["bytes_per_client"]
    payload["targets"] = targets(payload)
    payload["written"] = [str(p) for p in write_results(out, "trajectory_first_order",
                                                        payload, markdown(payload))]
    payload["written"].append(str(figure(payload, out)))
    return payload


def targets(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue-12 digits target, met or missed."""
    acc = payload["first_order"]["final_shared_accuracy"]
    rows = [{"target": "first-order shared model >= 0.96 mean test accuracy",
             "value": acc, "met": acc >= 0.96}]
    if payload.get("ratio") is not None:
        rows.append({"target": ">= 20x fewer bytes per client than FedAvg over the run",
                     "value": round(payload["ratio"], 1), "met": payload["ratio"] >= 20})
    return rows


def markdown(payload: dict[str, Any]) -> str:
    """The results page."""
    s, fo, fa = payload["settings"], payload["first_order"], payload["fedavg"]
    lines = [
        "# First-order seed projection (Ferret) against FedAvg on digits", "",
        f"`fedseed bench trajectory --first-order`: {s['users']} users (Dirichlet alpha "
        f"{s['alpha']}), {s['rounds']} rounds of {s['local_steps']} local steps of "
        f"{s['recipe']}'s optimizer at a constant lr "
        f"{s.get('lr') or 'of the recipe'} (both federations), "
        f"K = {fo['coefficients_per_round']:,} {s.get('dtype', 'float32')} coefficients per "
        f"round, server lr {s['server_lr']}, median-norm clipping "
        f"{'on' if s.get('robust', True) else 'off'}. Shared models are scored without "
        "fine-tuning on every user's test split (mean). The settings were picked on the "
        "users' validation splits (`simulations/first_order_sweep.py`; the sweep is in "
        "docs/seed-trajectories.md), never on these test splits.", "",
        "| method | shared accuracy | bytes/client over the run (down + up) |",
        "|---|---:|---:|",
        f"| first-order projection | {fo['final_shared_accuracy']:.3f} | "
        f"{fo['bytes_per_client']:,.0f} ({fo['bytes_down_per_client']:,.0f} + "
        f"{fo['bytes_up_per_client']:,.0f}) |"]
    if fa is not None:
        lines.append(f"| Flower FedAvg | {fa['final_shared_accuracy']:.3f} | "
                     f"{fa['bytes_per_client']:,.0f} ({fa['bytes_down_per_client']:,.0f} + "
                     f"{fa['bytes_up_per_client']:,.0f}) |")
    lines += ["", "## Targets", ""]
    for t in payload["targets"]:
        lines.append(f"- {t['target']}: **{'met' if t['met'] else 'missed'}** ({t['value']})")
    c = fo["catch_up"]
    lines += ["", "## Catch-up", "",
              f"- New device (replays {c['new_device']['rounds']} rounds from w0): "
              f"{c['new_device']['fetched_bytes']:,} bytes of meta-recipes fetched, "
              f"{c['new_device']['seconds']:.2f} s.",
              f"- Device that missed half the run ({c['missed_half']['rounds']} rounds): "
              f"{c['missed_half']['fetched_bytes']:,} bytes, "
              f"{c['missed_half']['seconds']:.2f} s.",
              f"- Client compute: {fo['client_seconds_per_round']:.2f} s per client per round "
              "(training, projection), on the machine below.", "",
              "## Shared accuracy per round", "", "| round | first-order | clipped |",
              "|---:|---:|---:|"]
    lines += [f"| {h['round']} | {h['shared_accuracy']:.3f} | {h['clipped']} |"
              for h in fo["history"]]
    m = payload["machine"]
    lines += ["", f"Machine: {m}", ""]
    return "\n".join(lines)


def figure(payload: dict[str, Any], out: Path) -> Path:
    """Shared accuracy per round (FedAvg's final accuracy as a line)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fo = payload["first_order"]["history"]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([h["round"] for h in fo], [h["shared_accuracy"] for h in fo], marker="o",
            label="first-order projection (replayed)")
    if payload["fedavg"] is not None:
        ax.axhline(payload["fedavg"]["final_shared_accuracy"], color="grey", linestyle="--",
                   label="FedAvg, final")
    ax.set_xlabel("round")
    ax.set_ylabel("mean test accuracy")
    ax.legend()
    return save_figure(fig, out / "trajectory_first_order.png")
