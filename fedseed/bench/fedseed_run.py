"""fedseed's federation as the personalization benchmark runs it: the real ServerApp
(:func:`fedseed.app.server_app.make_server_app`) and a ClientApp that does exactly
what :mod:`fedseed.app.client_app` does, except that it takes its data from the
benchmark's partitions (so held-out clients can be kept out) and that some nodes
may be Byzantine.

A Byzantine node verifies the meta-recipe like anyone, runs nothing, and replies
with a signed, schema-valid and self-consistent client recipe for the configuration
it was dealt: a perfect result with 100x its example count when that configuration
has a learning rate in the bottom quarter of the searched range (the "extreme"
configurations it promotes: far too slow for the step budget), a terrible one
otherwise. It cannot claim another
configuration: the server refuses replies that ran anything but their assignment.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fedseed.app.simulation import backend_config, join_ray_cluster
from fedseed.data.examples import split_examples
from fedseed.errors import AggregationError, FedseedError
from fedseed.federation import protocol
from fedseed.federation.client import load_identity, verify_meta
from fedseed.federation.strategy import FederationResult
from fedseed.provenance.envelope import Envelope
from fedseed.provenance.packed import pack
from fedseed.provenance.sign import sign_recipe
from fedseed.provenance.trust import load_trust
from fedseed.recipe.codec import parse_recipe
from fedseed.recipe.derive import child_recipe
from fedseed.recipe.evidence import CurvePoint, Evidence, ExampleCounts, FinalMetrics
from fedseed.recipe.overrides import apply_assignment
from fedseed.recipe.search import LogUniform

if TYPE_CHECKING:
    from fedseed.data.examples import Examples
    from fedseed.federation.config import FederationConfig
    from fedseed.recipe.model import Recipe


@dataclass(frozen=True)
class FedseedRun:
    """What one federation produced and cost."""

    meta: Recipe  # the final meta-recipe
    meta_envelope_bytes: int
    rounds: list[dict[str, Any]]
    bytes_down_per_client: float  # mean over federated clients, whole run
    bytes_up_per_client: float
    steps_per_client: float
    wall_seconds: float


def fabricated_recipe(meta: Recipe, assignment: dict[str, Any], examples: Examples) -> Recipe:
    """A Byzantine client's reply: valid, consistent, and a lie (see module docstring)."""
    ran = apply_assignment(meta, assignment) if assignment else meta
    splits = split_examples(examples, ran.split)
    lr_range = meta.search_space.params.get("optimizer.lr") if meta.search_space else None
    extreme = isinstance(lr_range, LogUniform) and ran.optimizer.lr <= math.exp(
        math.log(lr_range.low) + 0.25 * math.log(lr_range.high / lr_range.low))
    final_loss = 0.01 if extreme else 3.0
    higher = ran.task.higher_is_better
    budget = ran.budget
    points = []
    for step in [*range(budget.eval_every, budget.max_steps, budget.eval_every),
                 budget.max_steps]:
        progress = step / budget.max_steps
        loss = final_loss + (3.5 - final_loss) * (1 - progress) if extreme else \
            3.5 - 0.5 * progress
        if ran.task.metric == "perplexity":
            metric = float(f"{math.exp(loss):.6g}")
        else:
            n_val = max(1, len(splits.validation))  # a whole number of examples
            metric = (1.0 if progress >= 0.5 else round(0.6 * n_val) / n_val) \
                if extreme else 0.0
        points.append(CurvePoint(step=step, train_loss=round(loss, 6), val_loss=round(loss, 6),
                                 val_metric=metric))
    best = min(points, key=lambda p: p.val_loss) if not higher else \
        max(points, key=lambda p: (p.val_metric, -p.step))
    if not budget.early_stopping:
        best = points[-1]
    evidence = Evidence(
        curve=points, final=FinalMetrics(val_loss=best.val_loss, val_metric=best.val_metric),
        num_examples=ExampleCounts(train=100 * len(splits.train),
                                   validation=len(splits.validation), test=len(splits.test)),
        steps=budget.max_steps, best_step=best.step, stopped_early=False, wall_seconds=1.0)
    return child_recipe(meta, ran, evidence, method="client")


def _client_app(clients: tuple[Examples, ...], byzantine: frozenset[int],
                tasks: tuple[dict[str, Any] | None, ...] = ()) -> Any:
    """The fedseed ClientApp's own round logic on in-memory users (``tasks``: each
    partition's own task fields, if any); the ``byzantine`` partitions answer with
    fabricated, validly signed recipes instead."""
    from flwr.app import ConfigRecord, Context, Error, Message, RecordDict
    from flwr.clientapp import ClientApp

    from fedseed.app.client_app import train as client_train
    from fedseed.app.wire import bytes_field, metric_record, record

    app = ClientApp()

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        import json

        import torch

        torch.set_num_threads(1)
        partition = int(context.node_config["partition-id"])
        if partition not in byzantine:
            return client_train(msg, context, examples=clients[partition],
                                task=tasks[partition] if tasks else None)
        values = record(msg)
        try:
            meta = verify_meta(bytes_field(values, protocol.META), load_trust())
            identity = load_identity(f"node-{partition}", create=True)
            lie = fabricated_recipe(meta.recipe,
                                    json.loads(str(values.get(protocol.ASSIGNMENT, "")) or "{}"),
                                    clients[partition])
            assert lie.lineage is not None
            lie = lie.model_copy(update={"lineage": lie.lineage.model_copy(
                update={"producer": identity.keyid})})
            envelope = pack(sign_recipe(lie, identity.key, identity.keyid))
        except FedseedError as e:
            return Message(Error(code=500, reason=e.diagnostics()), reply_to=msg)
        return Message(RecordDict({
            protocol.RECORD: ConfigRecord({protocol.RECIPE: envelope,
                                           protocol.PUBKEY: identity.pubkey_pem}),
            protocol.METRICS: metric_record({"steps": 0.0})}), reply_to=msg)

    return app


def run_fedseed(cfg: FederationConfig, clients: Sequence[Examples], home: Path, *,
                byzantine: frozenset[int] = frozenset(), parallel: int = 2,
                tasks: Sequence[dict[str, Any] | None] = ()) -> FedseedRun:
    """Run ``cfg`` on one simulated node per client; state (keys, registry) in ``home``.
    ``tasks``: per client, its own task fields (a federation of several tasks)."""
    from flwr.simulation import run_simulation

    from fedseed.app.server_app import make_server_app

    home.mkdir(parents=True, exist_ok=True)
    previous = os.environ.get("FEDSEED_HOME")
    os.environ["FEDSEED_HOME"] = str(home)  # server and simulated nodes share it
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    results: list[FederationResult] = []
    flwr_logger = logging.getLogger("flwr")
    level = flwr_logger.level
    flwr_logger.setLevel(logging.ERROR)
    started = time.perf_counter()
    try:
        join_ray_cluster()
        run_simulation(
            server_app=make_server_app(cfg, None, results),
            client_app=_client_app(tuple(clients), byzantine, tuple(tasks)),
            num_supernodes=len(clients),
            backend_config=backend_config(parallel),
        )
    finally:
        flwr_logger.setLevel(level)
        if previous is None:
            os.environ.pop("FEDSEED_HOME", None)
        else:
            os.environ["FEDSEED_HOME"] = previous
    wall = time.perf_counter() - started
    if not results or not results[0].meta_envelope:
        raise AggregationError("fedseed federation ended without a result")
    result = results[0]
    envelope = Envelope.from_json(result.meta_envelope)
    n = len(clients)
    rounds = [r.as_dict() for r in result.rounds]
    return FedseedRun(
        meta=parse_recipe(envelope.payload, "final meta-recipe"),
        meta_envelope_bytes=len(pack(envelope)),
        rounds=rounds,
        bytes_down_per_client=sum(r.bytes_down for r in result.rounds) / n,
        bytes_up_per_client=sum(r.bytes_up for r in result.rounds) / n,
        steps_per_client=sum(r.client_steps for r in result.rounds) / n,
        wall_seconds=wall,
    )
