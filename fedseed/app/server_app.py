"""The fedseed ServerApp: each round, send the signed meta-recipe and an assignment to
sampled nodes, verify their signed client recipes, aggregate the accepted ones into
the next meta-recipe, sign it and publish it with its lineage.

Run config keys are those of :class:`fedseed.federation.config.FederationConfig`
(``[tool.flwr.app.config]`` in pyproject.toml).
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from logging import ERROR, INFO, WARNING
from typing import Any

from flwr.app import Context
from flwr.common.logger import log
from flwr.serverapp import Grid, ServerApp

from fedseed.app.collect import collect
from fedseed.app.wire import array_records, bytes_field, instruction, payload_bytes, record
from fedseed.errors import AggregationError, FedseedError
from fedseed.federation import protocol
from fedseed.federation.config import FederationConfig
from fedseed.federation.server import (
    RoundReport,
    ServerState,
    assignment_text,
    bind_keys,
    judge_reply,
    percentile,
    plan_round,
    seal,
    summarize,
)
from fedseed.meta import AggregatorState, Options, get_aggregator
from fedseed.provenance.keys import generate_key, key_id, load_private_key, public_pem
from fedseed.provenance.packed import pack
from fedseed.provenance.resolve import resolve_trusted
from fedseed.provenance.trust import load_trust, save_trust
from fedseed.recipe import Lineage, recipe_digest
from fedseed.recipe.search import with_step_budget
from fedseed.registry.client import open_registry

Event = Callable[[str, Any], None]


@dataclass
class FederationResult:
    """What a run produced: the round table, the final personalization, the lineage."""

    rounds: list[RoundReport] = field(default_factory=list)
    final: dict[str, Any] = field(default_factory=dict)
    meta_digests: list[str] = field(default_factory=list)
    meta_name: str = ""
    meta_envelope: bytes = b""  # the final meta-recipe, signed

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"rounds": [r.as_dict() for r in self.rounds], "final": self.final,
                "meta_digests": self.meta_digests, "meta_name": self.meta_name}


def _server_key(cfg: FederationConfig):  # type: ignore[no-untyped-def]
    from fedseed.errors import SignatureError

    try:
        key, _ = load_private_key(cfg.server_key)
    except SignatureError:
        if not cfg.auto_keys:
            raise
        generate_key(cfg.server_key)
        key, _ = load_private_key(cfg.server_key)
    trust = load_trust()
    if cfg.auto_keys:
        trust, _ = trust.add(public_pem(key.public_key()), "server", cfg.server_key)
        save_trust(trust)
    elif key_id(key.public_key()) not in trust.public_keys("server"):
        # Clients would refuse every meta-recipe; say so before the first round.
        raise SignatureError(
            f"server key '{cfg.server_key}' is not trusted as server in this trust store; "
            f"run `fedseed keys export {cfg.server_key} > server.pub && fedseed trust add "
            "server.pub --role server` (and give server.pub to the devices)")
    return key


def wait_for_nodes(grid: Grid, minimum: int, timeout: float) -> list[int]:
    """Node ids once ``minimum`` are connected (Flower reports nodes gradually)."""
    deadline = time.monotonic() + timeout
    while len(nodes := list(grid.get_node_ids())) < minimum:
        if time.monotonic() > deadline:
            if not nodes:
                raise AggregationError(f"no node connected within {timeout:.0f}s")
            log(WARNING, "only %d of %d nodes connected; going on", len(nodes), minimum)
            break
        time.sleep(0.5)
    return nodes


def run_federation(grid: Grid, cfg: FederationConfig,
                   on_event: Event | None = None) -> FederationResult:
    """Run ``cfg.num_rounds`` rounds on ``grid``; return the table and lineage."""
    emit = on_event or (lambda kind, value: None)
    key = _server_key(cfg)
    trust = load_trust()
    # The server publishes its own meta-recipes: its key is a publisher of its registry.
    registry_trust, _ = trust.add(public_pem(key.public_key()), "publisher", cfg.server_key)
    registry = open_registry(cfg.registry or None, registry_trust)
    options = Options(robust=cfg.robust, budget_from_curves=cfg.budget_from_curves,
                      warm_start=cfg.warm_start, seed=cfg.seed)
    if cfg.mode == "trajectory" and cfg.trajectory_method == "first-order":
        from fedseed.meta.projection import ProjectionAggregator

        aggregate: Any = ProjectionAggregator(options, total_k=cfg.projection_k,
                                              server_lr=cfg.projection_lr)
    elif cfg.mode == "trajectory":
        from fedseed.meta import TrajectoryAggregator

        aggregate: Any = TrajectoryAggregator(
            options, pool_size=cfg.pool_size, steps=cfg.zo_steps, lr=cfg.zo_lr,
            epsilon=cfg.zo_epsilon, seeds_per_step=cfg.seeds_per_step, sampling=cfg.sampling,
            server_lr=cfg.server_lr)
    else:
        aggregate = get_aggregator(cfg.aggregator, options)
    state = _initial_state(cfg, key, trust, registry, aggregate)
    meta_name = f"{state.baseline.recipe.name}-meta"
    result = FederationResult(meta_name=meta_name, meta_digests=[state.meta.digest])
    rng = random.Random(cfg.seed)
    start = state.aggregator.round + 1
    emit("start", {"rounds": cfg.num_rounds, "from": start})
    for round_ in range(start, cfg.num_rounds + 1):
        began = time.monotonic()
        nodes = wait_for_nodes(grid, cfg.min_nodes, cfg.timeout)
        plan = plan_round(state.meta.recipe, nodes, cfg.fraction, cfg.min_nodes, rng)
        meta_bytes, sent_digest = pack(state.meta.envelope), state.meta.digest
        assignments = {node: assignment for node, assignment in plan}
        messages = [instruction(node, protocol.TRAIN, round_, {
            protocol.META: meta_bytes, protocol.ASSIGNMENT: assignment_text(assignment)})
            for node, assignment in plan]
        bytes_down = sum(payload_bytes(m) for m in messages)
        replies = collect(grid, messages, timeout=cfg.timeout, quorum=cfg.quorum,
                          grace=cfg.grace)
        # Inspect every message of the round, both ways: weights never cross the wire.
        arrays = sum(array_records(m) for m in [*messages, *replies])
        failures: Counter[str] = Counter()
        judged: list[Any] = []
        seen: set[str] = set()
        bytes_up = 0
        received: dict[str, tuple[bytes, bytes, int]] = {}
        for reply in replies:
            node = reply.metadata.src_node_id
            if reply.has_error():
                failures["client error"] += 1
                continue
            if array_records(reply):
                failures["weights on the wire"] += 1  # never aggregated, only counted
                continue
            bytes_up += payload_bytes(reply)
            values = record(reply)
            envelope = bytes_field(values, protocol.RECIPE)
            pubkey = bytes_field(values, protocol.PUBKEY)
            verdict = judge_reply(node, envelope, pubkey, assignments.get(node, {}), state,
                                  trust, cfg.client_trust, seen)
            judged.append(verdict)
            if verdict.reply is not None:
                received[verdict.reply.digest] = (envelope, pubkey, node)
        failures["no reply"] += len(plan) - len(replies)
        failures = +failures
        # Arrival order must not matter to aggregation: sort by content address.
        accepted = sorted((j.reply for j in judged if j.reply is not None),
                          key=lambda r: r.digest)
        state = bind_keys(state, judged)
        trust = _remember_clients(trust, received, cfg)
        _publish_clients(registry_trust, received, cfg, meta_name)
        sealed = None
        if len(accepted) >= max(1, cfg.min_replies):
            try:
                next_recipe, agg = aggregate(state.meta.recipe, accepted, state.aggregator)
                sealed = seal(next_recipe, key, trust)
            except FedseedError as e:  # a round's evidence must not end the federation
                log(WARNING, "round %d: aggregation failed (%s); keeping the meta-recipe",
                    round_, e.diagnostics())
            except Exception as e:  # noqa: BLE001 - nor may a bug a client's numbers trigger
                log(ERROR, "round %d: aggregator %s raised %s: %s; keeping the meta-recipe",
                    round_, cfg.aggregator, type(e).__name__, e)
        if sealed is not None:
            registry.publish(sealed.envelope, name=meta_name, tag=f"round-{round_}")
            registry.publish(sealed.envelope, name=meta_name, tag="latest")
            state = replace(state, meta=sealed, aggregator=agg)
            result.meta_digests.append(sealed.digest)
        else:
            if len(accepted) < max(1, cfg.min_replies):
                log(WARNING, "round %d: %d accepted replies, fewer than min-replies %d; "
                    "keeping the meta-recipe", round_, len(accepted), cfg.min_replies)
            state = replace(state, aggregator=replace(state.aggregator, round=round_))
        report = summarize(round_, len(plan), judged, failures, bytes_down, bytes_up,
                           meta_digest=sent_digest, next_digest=state.meta.digest,
                           seconds=time.monotonic() - began)
        report = replace(report, array_records=arrays)
        result.rounds.append(report)
        log(INFO, "fedseed round %d: sampled %d, accepted %d, rejected %s, val mean %s, "
            "bytes down/up %d/%d", round_, report.sampled, report.accepted,
            dict(report.rejected), report.val_mean, bytes_down, bytes_up)
        emit("round", report)
    result.meta_envelope = state.meta.envelope.to_json()
    if cfg.final_personalization:
        result.final = _final(grid, cfg, state, emit)
    return result


def _remember_clients(trust: Any, received: dict[str, tuple[bytes, bytes, int]],
                      cfg: FederationConfig) -> Any:
    """Trust on first use, made durable: accepted nodes' keys join the trust store as
    ``client``, so lineage through their recipes verifies later."""
    if cfg.client_trust != "tofu" or not received:
        return trust
    current = load_trust()
    for _, pubkey, node in received.values():
        try:
            current, _ = current.add(pubkey, "client", f"node-{node}")
        except FedseedError as e:  # judge_reply refuses revoked keys; never crash here
            log(WARNING, "node %s key not remembered: %s", node, e.diagnostics())
    save_trust(current)
    return current


def _publish_clients(registry_trust: Any, received: dict[str, tuple[bytes, bytes, int]],
                     cfg: FederationConfig, meta_name: str) -> None:
    """Store accepted client recipes next to the meta-recipes they feed (embedded
    registries; a remote registry decides itself whom it accepts as publisher)."""
    from fedseed.provenance.packed import read_envelope

    if not received:
        return
    trust = registry_trust
    for _, pubkey, node in received.values():
        trust, _ = trust.add(pubkey, "publisher", f"node-{node}")
    registry = open_registry(cfg.registry or None, trust)
    for envelope, _, _ in received.values():
        try:
            registry.publish(read_envelope(envelope), name=f"{meta_name}-clients", tag=None)
        except FedseedError as e:
            log(WARNING, "client recipe not stored in the registry: %s", e.diagnostics())


def _initial_state(cfg: FederationConfig, key: Any, trust: Any, registry: Any,
                   aggregate: Any) -> ServerState:
    """Round-0 meta-recipe (the named recipe, signed), or the last one when resuming."""
    from fedseed.provenance.verify import verify_envelope

    # A signed `recipe` is used only once it verified under the server's trust store.
    named = resolve_trusted(cfg.recipe, trust).recipe
    if cfg.max_steps:
        named = with_step_budget(named, cfg.max_steps)
        space = named.search_space
        if space is not None:
            # The override is the budget: no assignment may explore past it.
            kept = {p: d for p, d in space.params.items()
                    if p not in ("budget.max_steps", "budget.eval_every")}
            named = named.model_copy(update={"search_space": space.model_copy(
                update={"params": kept}) if kept else None})
    if cfg.resume:
        try:
            last = verify_envelope(registry.fetch(f"{named.name}-meta:latest"), trust,
                                   role="server", source="last meta-recipe")
            first = verify_envelope(registry.fetch(f"{named.name}-meta:round-0"), trust,
                                    role="server", source="round-0 meta-recipe")
        except FedseedError as e:
            raise AggregationError(f"cannot resume: {e.diagnostics()}") from e
        done = last.recipe.lineage.round if last.recipe.lineage else 0
        log(INFO, "resuming after round %d from %s", done, last.digest)
        return ServerState(meta=last, baseline=first, aggregator=AggregatorState(round=done))
    origin = seal(named, key, trust)
    registry.publish(origin.envelope, name=named.name, tag="federation-origin")
    meta0 = seal(aggregate.prepare(named).model_copy(update={"lineage": Lineage(
        parents=[recipe_digest(named)], round=0, method="init")}), key, trust)
    registry.publish(meta0.envelope, name=f"{named.name}-meta", tag="round-0")
    registry.publish(meta0.envelope, name=f"{named.name}-meta", tag="latest")
    return ServerState(meta=meta0, baseline=meta0)


def _final(grid: Grid, cfg: FederationConfig, state: ServerState, emit: Event
           ) -> dict[str, Any]:
    """Every node personalises from the final meta-recipe and the round-0 recipe."""
    nodes = sorted(grid.get_node_ids())
    round_ = state.aggregator.round + 1
    messages = [instruction(node, protocol.EVALUATE, round_, {
        protocol.META: pack(state.meta.envelope),
        protocol.BASELINE: pack(state.baseline.envelope)}) for node in nodes]
    replies = collect(grid, messages, timeout=cfg.timeout, quorum=cfg.quorum, grace=cfg.grace)
    rows = [r.content.metric_records[protocol.METRICS] for r in replies
            if not r.has_error() and protocol.METRICS in r.content.metric_records]
    per_client = sorted(({"node": r.metadata.src_node_id,
                          **{k: float(v) for k, v in  # type: ignore[arg-type]
                             r.content.metric_records[protocol.METRICS].items()}}
                         for r in replies if not r.has_error()
                         and protocol.METRICS in r.content.metric_records),
                        key=lambda row: row["node"])
    out: dict[str, Any] = {"clients": len(nodes), "reported": len(rows),
                           "per_client": per_client}
    for name in ("test-metric-shared", "test-metric-meta", "test-metric-baseline",
                 "steps-meta", "steps-baseline"):
        values = sorted(float(row[name]) for row in rows if name in row)  # type: ignore[arg-type]
        if values:
            out[name] = {"mean": sum(values) / len(values), "p10": percentile(values, 10)}
    emit("final", out)
    return out


def make_server_app(config: FederationConfig | None = None, on_event: Event | None = None,
                    results: list[FederationResult] | None = None) -> ServerApp:
    """A ServerApp running :func:`run_federation`; ``config`` defaults to the run config."""
    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        cfg = config or FederationConfig.from_run_config(context.run_config)
        result = run_federation(grid, cfg, on_event)
        if results is not None:
            results.append(result)
        log(INFO, "fedseed final: %s", json.dumps(result.final))

    return server


app = make_server_app()
