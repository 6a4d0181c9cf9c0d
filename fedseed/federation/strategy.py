"""``FedseedStrategy``: fedseed's round loop as a Flower-free object, shaped like
Flower's Message-API strategies (``configure_train``, ``aggregate_train``,
``configure_evaluate``, ``aggregate_evaluate``, ``start``).

Every collaborator is passed in: the aggregator (anything that follows
:class:`fedseed.meta.base.Aggregator`: a built-in one, a trajectory method, or the
user's own), the server's signing key, the trust store, the registry and the round
settings. Nothing is read from ``$FEDSEED_HOME`` here; the ServerApp reads it once,
at the edge (:mod:`fedseed.app.server_app`).

Messages are plain values (:class:`Instruction` down, :class:`NodeReply` up) that a
:class:`Transport` moves: Flower's Grid (:class:`fedseed.app.transport.GridTransport`)
or in-process calls of the real client logic
(:class:`fedseed.federation.in_process.InProcessTransport`). Each holds recipe bytes
and a few numbers, never weights; every round counts any ArrayRecord in either
direction.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from logging import getLogger
from typing import TYPE_CHECKING, Any, Literal, Protocol

from fedseed.errors import AggregationError, FedseedError
from fedseed.federation import protocol
from fedseed.federation.server import (
    Judged,
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
from fedseed.meta.base import Aggregator, AggregatorState, ClientReply
from fedseed.meta.robust import inconsistencies
from fedseed.meta.tasks import on_meta_scale
from fedseed.privacy.accountant import account_round, next_round_allowed
from fedseed.privacy.mechanisms import private_group_evidence
from fedseed.privacy.settings import PrivacySettings, privacy_section
from fedseed.provenance.keys import key_id, public_pem
from fedseed.provenance.packed import pack, read_envelope
from fedseed.provenance.trust import TrustStore
from fedseed.provenance.verify import verify_envelope
from fedseed.recipe.codec import recipe_digest
from fedseed.recipe.evidence import Lineage
from fedseed.recipe.model import Recipe
from fedseed.recipe.privacy import Privacy
from fedseed.registry.client import RegistryClient

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

log = getLogger("fedseed.strategy")

Event = Callable[[str, Any], None]
ClientTrust = Literal["store", "tofu"]


@dataclass(frozen=True)
class RoundSettings:
    """How rounds run: how many, whom to sample, when a round closes.

    A round closes when every sampled node replied, or ``grace`` seconds after a share
    ``quorum`` of them did, or ``timeout`` seconds after it began (a hang guard, not a
    speed limit). ``client_trust``: ``store`` accepts only client keys in the trust
    store; ``tofu`` binds each node to the first key it signs with.
    """

    num_rounds: int = 3
    fraction: float = 1.0
    min_nodes: int = 2
    min_replies: int = 1
    timeout: float = 600.0
    quorum: float = 1.0
    grace: float = 0.0
    client_trust: ClientTrust = "store"
    seed: int = 0
    final_personalization: bool = True
    #: Label counts a device may train instead of the meta-recipe's (fedseed.meta.tasks).
    task_labels: tuple[int, ...] = ()
    #: Differential privacy for what clients send (fedseed.privacy); None: off.
    privacy: PrivacySettings | None = None

    def __post_init__(self) -> None:
        checks = [
            (1 <= self.num_rounds <= 10_000, "num_rounds must be 1..10000"),
            (0.0 < self.fraction <= 1.0, "fraction must be in (0, 1]"),
            (self.min_nodes >= 1 and self.min_replies >= 0,
             "min_nodes must be at least 1 and min_replies at least 0"),
            (self.timeout > 0 and 0.0 < self.quorum <= 1.0
             and 0.0 <= self.grace <= self.timeout,
             "timeout must be positive, quorum in (0, 1], grace in [0, timeout]"),
            (self.client_trust in ("store", "tofu"), "client_trust must be store or tofu"),
        ]
        for ok, message in checks:
            if not ok:
                raise FedseedError(f"round settings: {message}")


@dataclass(frozen=True)
class Instruction:
    """A message to one node: recipe bytes and scalars (``protocol`` keys)."""

    node: int
    kind: str  # protocol.TRAIN or protocol.EVALUATE
    round: int
    values: Mapping[str, bytes | str | int]


@dataclass(frozen=True)
class NodeReply:
    """What one node answered: its record fields and metrics, or an error."""

    node: int
    values: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    error: str | None = None
    arrays: int = 0  # ArrayRecords the reply held (fedseed's never hold one)


@dataclass(frozen=True)
class Delivery:
    """A round's exchange: the replies that arrived in time, and what was sent."""

    replies: list[NodeReply]
    bytes_down: int
    arrays_sent: int = 0


class Transport(Protocol):
    """Moves instructions to nodes and their replies back (Flower's Grid, or calls)."""

    def node_ids(self, minimum: int, timeout: float) -> list[int]:
        """The connected nodes, once ``minimum`` are there (or ``timeout`` passed)."""
        ...

    def exchange(self, instructions: Sequence[Instruction], settings: RoundSettings
                 ) -> Delivery:
        """Send ``instructions``; return the replies collected under ``settings``."""
        ...


def payload_size(values: Mapping[str, Any]) -> int:
    """Bytes a record carries: keys, bytes and text fields, 8 per number."""
    total = 0
    for key, value in values.items():
        total += len(key)
        for item in value if isinstance(value, list) else [value]:
            total += len(item) if isinstance(item, (bytes, str)) else 8
    return total


@dataclass
class FederationResult:
    """What a run produced: the round table, the final personalization, the lineage."""

    rounds: list[RoundReport] = field(default_factory=list)
    final: dict[str, Any] = field(default_factory=dict)
    meta_digests: list[str] = field(default_factory=list)
    meta_name: str = ""
    meta_envelope: bytes = b""  # the final meta-recipe, signed (DSSE JSON)
    meta: Recipe | None = None  # the final meta-recipe itself
    #: Under privacy: the settings and what was spent (epsilon, delta, rounds, and
    #: whether the federation stopped early at its target epsilon).
    privacy: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"rounds": [r.as_dict() for r in self.rounds], "final": self.final,
                "meta_digests": self.meta_digests, "meta_name": self.meta_name,
                "privacy": self.privacy}


class FedseedStrategy:
    """fedseed's server: sample, instruct, judge, aggregate, sign, publish.

    Parameters
    ----------
    aggregator
        Turns a meta-recipe and this round's accepted client replies into the next
        meta-recipe (:class:`fedseed.meta.base.Aggregator`).
    recipe
        The recipe the federation starts from (already resolved and verified).
    key
        The server's Ed25519 signing key: it signs every meta-recipe.
    trust
        Whom the server trusts: its own key must be trusted for ``server`` (devices
        check the same), clients for ``client`` under ``client_trust = "store"``.
    registry
        Where meta-recipes and accepted client recipes are published.
    settings
        :class:`RoundSettings`.
    on_trust
        Called with the trust store whenever trust-on-first-use adds client keys, so a
        caller can persist them (the ServerApp writes ``$FEDSEED_HOME``).
    on_event
        Called with ``("start", {...})``, ``("round", RoundReport)``, ``("final", {...})``.
    """

    def __init__(self, aggregator: Aggregator, recipe: Recipe, *, key: Ed25519PrivateKey,
                 trust: TrustStore, registry: RegistryClient,
                 settings: RoundSettings = RoundSettings(),
                 on_trust: Callable[[TrustStore], None] | None = None,
                 on_event: Event | None = None) -> None:
        self.aggregator, self.recipe, self.key = aggregator, recipe, key
        self.trust, self.settings = trust, settings
        self.on_trust, self.emit = on_trust, on_event or (lambda kind, value: None)
        self.keyid = key_id(key.public_key())
        if self.keyid not in trust.public_keys("server"):
            # Devices would refuse every meta-recipe; say so before the first round.
            raise FedseedError(
                f"the server key {self.keyid[:16]}… is not trusted for the server role in "
                "the trust store given to the strategy; add it with "
                "trust.add(public_pem, 'server', name), or `fedseed trust add server.pub "
                "--role server`")
        # The server publishes its own meta-recipes: its key is a registry publisher.
        self.publishers, _ = trust.add(public_pem(key.public_key()), "publisher", "server")
        self.registry = registry.with_publishers(self.publishers)
        self.meta_name = f"{recipe.name}-meta"
        self.rng = random.Random(settings.seed)
        self.state: ServerState | None = None
        self._plan: dict[int, dict[str, Any]] = {}

    # --- rounds ---------------------------------------------------------------------

    def initialize(self, resume: bool = False, population: int | None = None
                   ) -> ServerState:
        """Round 0: sign and publish the starting meta-recipe (or, with ``resume``,
        continue from the last one this registry holds). ``population``: how many
        devices the federation has (the privacy section's delta and accounting; the
        settings' ``min_nodes`` when not given)."""
        if resume:
            try:
                last = verify_envelope(self.registry.fetch(f"{self.meta_name}:latest"),
                                       self.trust, role="server", source="last meta-recipe")
                first = verify_envelope(self.registry.fetch(f"{self.meta_name}:round-0"),
                                        self.trust, role="server",
                                        source="round-0 meta-recipe")
            except FedseedError as e:
                raise AggregationError(f"cannot resume: {e.diagnostics()}") from e
            _check_resumed_privacy(last.recipe.privacy, self.settings.privacy)
            done = last.recipe.lineage.round if last.recipe.lineage else 0
            log.info("resuming after round %d from %s", done, last.digest)
            self.state = ServerState(meta=last, baseline=first,
                                     aggregator=AggregatorState(round=done))
            return self.state
        origin = seal(self.recipe, self.key, self.trust)
        self.registry.publish(origin.envelope, name=self.recipe.name, tag="federation-origin")
        start = self.recipe
        if self.settings.privacy is not None:  # signed: every device sees its protection
            start = start.model_copy(update={"privacy": privacy_section(
                self.settings.privacy, population or self.settings.min_nodes,
                self.settings.num_rounds, start)})
        prepared = self.aggregator.prepare(start).model_copy(update={"lineage": Lineage(
            parents=[recipe_digest(self.recipe)], round=0, method="init")})
        meta0 = seal(prepared, self.key, self.trust)
        self._publish_meta(meta0, 0)
        self.state = ServerState(meta=meta0, baseline=meta0)
        return self.state

    def configure_train(self, server_round: int, node_ids: Sequence[int]
                        ) -> list[Instruction]:
        """Sample nodes and deal each its configuration, with the signed meta-recipe."""
        state = self._require_state()
        privacy = state.meta.recipe.privacy
        if privacy is not None and not next_round_allowed(privacy):
            raise AggregationError(f"round {server_round} would take epsilon past the "
                                   f"target {privacy.target_epsilon:g} (spent "
                                   f"{privacy.epsilon:.4g} in {privacy.rounds} rounds): the "
                                   "privacy budget is spent")
        plan = plan_round(state.meta.recipe, node_ids, self.settings.fraction,
                          self.settings.min_nodes, self.rng)
        self._plan = {node: assignment for node, assignment in plan}
        meta = pack(state.meta.envelope)
        return [Instruction(node, protocol.TRAIN, server_round, {
            protocol.META: meta, protocol.ASSIGNMENT: assignment_text(assignment)})
            for node, assignment in plan]

    def aggregate_train(self, server_round: int, replies: Sequence[NodeReply], *,
                        bytes_down: int = 0, arrays_sent: int = 0,
                        seconds: float = 0.0) -> RoundReport:
        """Judge every reply, aggregate the accepted ones into the next meta-recipe,
        sign and publish it; return the round's table line."""
        state = self._require_state()
        failures: Counter[str] = Counter()
        judged: list[Judged] = []
        seen: set[str] = set()
        received: dict[str, tuple[bytes, bytes, int]] = {}
        bytes_up = 0
        for reply in replies:
            if reply.error is not None:
                failures["client error"] += 1
                continue
            if reply.arrays:
                failures["weights on the wire"] += 1  # never aggregated, only counted
                continue
            bytes_up += payload_size(reply.values) + payload_size(reply.metrics)
            envelope = _bytes(reply.values.get(protocol.RECIPE))
            pubkey = _bytes(reply.values.get(protocol.PUBKEY))
            verdict = judge_reply(reply.node, envelope, pubkey,
                                  self._plan.get(reply.node, {}), state, self.trust,
                                  self.settings.client_trust, seen,
                                  tasks=self.settings.task_labels)
            judged.append(verdict)
            if verdict.reply is not None:
                received[verdict.reply.digest] = (envelope, pubkey, reply.node)
        failures["no reply"] += len(self._plan) - len(replies)
        # Arrival order must not matter to aggregation: sort by content address.
        accepted = sorted((j.reply for j in judged if j.reply is not None),
                          key=lambda r: r.digest)
        state = bind_keys(state, judged)
        self._remember_clients(received)
        privacy = state.meta.recipe.privacy
        if privacy is None or privacy.mode == "local":
            # A central server holds exact client values: it never republishes them.
            self._publish_clients(received)
        # Other tasks' losses on the meta-recipe's scale (fedseed.meta.tasks).
        scaled = [on_meta_scale(r, state.meta.recipe) for r in accepted]
        if privacy is not None and privacy.mode == "central" and scaled \
                and state.meta.recipe.trajectory is None \
                and state.meta.recipe.projection is None:
            scaled, judged = _noise_evidence(scaled, judged, privacy, self.aggregator)
        # Replies arrived, so the round is spent (under local DP they are already
        # published), whether it aggregates or not: accounted first, and loudly.
        accounted = account_round(privacy) if privacy is not None and accepted else None
        sealed, agg = None, state.aggregator
        if len(accepted) >= max(1, self.settings.min_replies):
            try:
                next_recipe, agg = self.aggregator(state.meta.recipe, scaled,
                                                   state.aggregator)
                if accounted is not None:
                    next_recipe = _private_meta(next_recipe, accounted, state.meta.digest)
                sealed = seal(next_recipe, self.key, self.trust)
            except FedseedError as e:  # a round's evidence must not end the federation
                log.warning("round %d: aggregation failed (%s); keeping the meta-recipe",
                            server_round, e.diagnostics())
            except Exception as e:  # noqa: BLE001 - nor may a bug a client's numbers hit
                log.error("round %d: aggregator %s raised %s: %s; keeping the meta-recipe",
                          server_round, getattr(self.aggregator, "name", "?"),
                          type(e).__name__, e)
        else:
            log.warning("round %d: %d accepted replies, fewer than min_replies %d; keeping "
                        "the meta-recipe", server_round, len(accepted),
                        self.settings.min_replies)
        if sealed is None and accounted is not None:
            # Nothing aggregated, yet the round was spent: the same meta-recipe, with the
            # round accounted (the epsilon a device sees must not understate).
            kept = state.meta.recipe.model_copy(update={"privacy": accounted, "lineage": Lineage(
                parents=[state.meta.digest], round=server_round, method="privacy-spent")})
            sealed = seal(kept, self.key, self.trust)
            agg = replace(state.aggregator, round=server_round)
        sent = state.meta.digest
        if sealed is not None:
            self._publish_meta(sealed, server_round)
            state = replace(state, meta=sealed, aggregator=agg)
        else:
            state = replace(state, aggregator=replace(state.aggregator, round=server_round))
        self.state = state
        report = summarize(server_round, len(self._plan), judged, +failures, bytes_down,
                           bytes_up, meta_digest=sent, next_digest=state.meta.digest,
                           seconds=seconds)
        return replace(report, array_records=arrays_sent + sum(r.arrays for r in replies))

    def configure_evaluate(self, server_round: int, node_ids: Sequence[int]
                           ) -> list[Instruction]:
        """Every node personalises from the final meta-recipe and the round-0 one."""
        state = self._require_state()
        values = {protocol.META: pack(state.meta.envelope),
                  protocol.BASELINE: pack(state.baseline.envelope)}
        return [Instruction(node, protocol.EVALUATE, server_round, values)
                for node in sorted(node_ids)]

    def aggregate_evaluate(self, server_round: int, replies: Sequence[NodeReply],
                           nodes: int) -> dict[str, Any]:
        """The final personalization's table: per node, and mean / p10 per metric."""
        rows = sorted(({"node": r.node, **{k: float(v) for k, v in r.metrics.items()}}
                       for r in replies if r.error is None and r.metrics),
                      key=lambda row: row["node"])
        out: dict[str, Any] = {"clients": nodes, "reported": len(rows), "per_client": rows}
        for name in ("test-metric-shared", "test-metric-meta", "test-metric-baseline",
                     "steps-meta", "steps-baseline"):
            values = sorted(row[name] for row in rows if name in row)
            if values:
                out[name] = {"mean": sum(values) / len(values),
                             "p10": percentile(values, 10)}
        return out

    def start(self, transport: Transport, *, resume: bool = False) -> FederationResult:
        """Run ``settings.num_rounds`` rounds over ``transport``; return the table,
        the lineage of meta-recipes and (if asked) the final personalization."""
        s = self.settings
        population = len(transport.node_ids(s.min_nodes, s.timeout)) \
            if s.privacy is not None and not resume else None
        state = self.initialize(resume, population=population)
        result = FederationResult(meta_name=self.meta_name, meta_digests=[state.meta.digest])
        first = state.aggregator.round + 1
        self.emit("start", {"rounds": s.num_rounds, "from": first})
        for server_round in range(first, s.num_rounds + 1):
            privacy = self._require_state().meta.recipe.privacy
            if privacy is not None and not next_round_allowed(privacy):
                log.warning("round %d not run: it would take epsilon past the target %g "
                            "(spent %.4g in %d rounds)", server_round,
                            privacy.target_epsilon, privacy.epsilon, privacy.rounds)
                result.privacy["stopped_at_round"] = server_round
                break
            began = time.monotonic()
            nodes = transport.node_ids(s.min_nodes, s.timeout)
            delivery = transport.exchange(self.configure_train(server_round, nodes), s)
            before = self._require_state().meta.digest
            report = self.aggregate_train(server_round, delivery.replies,
                                          bytes_down=delivery.bytes_down,
                                          arrays_sent=delivery.arrays_sent)
            # The round's wall time, aggregation and publishing included.
            report = replace(report, seconds=round(time.monotonic() - began, 2))
            if report.next_digest != before:
                result.meta_digests.append(report.next_digest)
            result.rounds.append(report)
            log.debug("fedseed round %d: sampled %d, accepted %d, rejected %s, val mean %s, "
                     "bytes down/up %d/%d", server_round, report.sampled, report.accepted,
                     dict(report.rejected), report.val_mean, report.bytes_down,
                     report.bytes_up)
            self.emit("round", report)
        final_state = self._require_state()
        result.meta_envelope = final_state.meta.envelope.to_json()
        result.meta = final_state.meta.recipe
        if result.meta.privacy is not None:
            result.privacy.update(result.meta.privacy.model_dump(mode="json"))
        if s.final_personalization:
            nodes = transport.node_ids(s.min_nodes, s.timeout)
            delivery = transport.exchange(
                self.configure_evaluate(final_state.aggregator.round + 1, nodes), s)
            result.final = self.aggregate_evaluate(final_state.aggregator.round + 1,
                                                   delivery.replies, len(nodes))
            self.emit("final", result.final)
        return result

    # --- helpers --------------------------------------------------------------------

    def _require_state(self) -> ServerState:
        if self.state is None:
            raise AggregationError("the strategy has no meta-recipe yet: call "
                                   "initialize() (start() does) before a round")
        return self.state

    def _publish_meta(self, sealed: Any, server_round: int) -> None:
        self.registry.publish(sealed.envelope, name=self.meta_name, tag=f"round-{server_round}")
        self.registry.publish(sealed.envelope, name=self.meta_name, tag="latest")

    def _remember_clients(self, received: Mapping[str, tuple[bytes, bytes, int]]) -> None:
        """Trust on first use, made durable: accepted nodes' keys join the trust store
        as ``client``, so lineage through their recipes verifies later."""
        if self.settings.client_trust != "tofu" or not received:
            return
        trust = self.trust
        for _, pubkey, node in received.values():
            try:
                trust, _ = trust.add(pubkey, "client", f"node-{node}")
            except FedseedError as e:  # judge_reply refuses revoked keys; never crash
                log.warning("node %s key not remembered: %s", node, e.diagnostics())
        if trust is not self.trust:
            self.trust = trust
            if self.on_trust is not None:
                self.on_trust(trust)

    def _publish_clients(self, received: Mapping[str, tuple[bytes, bytes, int]]) -> None:
        """Store accepted client recipes next to the meta-recipes they feed (embedded
        registries; a remote registry decides itself whom it accepts as publisher)."""
        if not received:
            return
        publishers = self.publishers
        for _, pubkey, node in received.values():
            publishers, _ = publishers.add(pubkey, "publisher", f"node-{node}")
        registry = self.registry.with_publishers(publishers)
        for envelope, _, _ in received.values():
            try:
                registry.publish(read_envelope(envelope), name=f"{self.meta_name}-clients",
                                 tag=None)
            except FedseedError as e:
                log.warning("client recipe not stored in the registry: %s", e.diagnostics())


def _noise_evidence(replies: list[ClientReply], judged: list[Judged], privacy: Privacy,
                    aggregator: Aggregator) -> tuple[list[ClientReply], list[Judged]]:
    """Central DP, recipes mode: drop self-contradicting replies while the server still
    holds exact values (under ``robust``), then replace every reply's evidence by its
    configuration's noisy mean. The round table gets the released values too."""
    options = getattr(aggregator, "options", None)
    if options is None or options.robust:
        replies = [r for r in replies if not inconsistencies(r.recipe)]
    noisy = {r.digest: r for r in private_group_evidence(replies, privacy)}
    judged = [j if j.reply is None else replace(j, reply=noisy[j.reply.digest])
              if j.reply.digest in noisy else replace(j, reply=None, reason="inconsistent")
              for j in judged]
    return list(noisy.values()), judged


def _private_meta(recipe: Recipe, accounted: Privacy, previous: str) -> Recipe:
    """The next meta-recipe with the round accounted. Under central DP its lineage names
    the previous meta-recipe, not the client recipes: their digests are hashes of exact
    values, and a guessed dataset could be confirmed against them."""
    update: dict[str, Any] = {"privacy": accounted}
    if accounted.mode == "central" and recipe.lineage is not None:
        update["lineage"] = recipe.lineage.model_copy(update={"parents": [previous]})
    return recipe.model_copy(update=update)


def _check_resumed_privacy(signed: Privacy | None, asked: PrivacySettings | None) -> None:
    """Resuming must keep the protection the run started with."""
    if (signed is None) != (asked is None):
        raise AggregationError(
            "cannot resume: the last meta-recipe was made " + ("with" if signed else "without")
            + " differential privacy and this run asks " + ("without" if signed else "with")
            + " it; resume with the same dp settings, or start a new federation")
    if signed is not None and asked is not None and (
            signed.mode != asked.mode or signed.clip != asked.clip
            or (asked.noise_multiplier and signed.noise_multiplier != asked.noise_multiplier)):
        raise AggregationError(f"cannot resume: the federation runs dp {signed.mode}, clip "
                               f"{signed.clip:g}, noise multiplier "
                               f"{signed.noise_multiplier:.4g}; resume with those settings")


def _bytes(value: Any) -> bytes:
    """A bytes field; empty when absent or of another type (the judge then rejects
    the reply as malformed rather than crashing)."""
    return bytes(value) if isinstance(value, bytes) else b""


def wait_for_nodes(node_ids: Callable[[], Sequence[int]], minimum: int, timeout: float
                   ) -> list[int]:
    """Node ids once ``minimum`` are connected (Flower reports nodes gradually)."""
    deadline = time.monotonic() + timeout
    while len(nodes := list(node_ids())) < minimum:
        if time.monotonic() > deadline:
            if not nodes:
                raise AggregationError(f"no node connected within {timeout:.0f}s")
            log.warning("only %d of %d nodes connected; going on", len(nodes), minimum)
            break
        time.sleep(0.5)
    return nodes


__all__ = ["Delivery", "FederationResult", "FedseedStrategy", "Instruction", "NodeReply",
           "RoundSettings", "Transport", "payload_size", "wait_for_nodes"]
