"""Server-side round logic, free of Flower: sampling, assignments, judging replies,
aggregating, signing. The Flower ServerApp (:mod:`fedseed.app.server_app`) only
moves bytes between this module and the Grid.

State that spans rounds is one immutable :class:`ServerState` value, replaced each
round, so a run can be resumed from the last meta-recipe and the same inputs replay
the same run.
"""

from __future__ import annotations

import json
import random
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from fedseed.errors import FedseedError, VerificationError
from fedseed.meta.base import AggregatorState, ClientReply, sample_assignment
from fedseed.meta.tasks import task_allowed
from fedseed.privacy.mechanisms import releases_only_what_it_may
from fedseed.provenance.keys import key_id, load_public_pem, public_pem
from fedseed.provenance.packed import read_envelope
from fedseed.provenance.sign import sign_recipe
from fedseed.provenance.trust import TrustStore
from fedseed.provenance.verify import VerifiedRecipe, verify_envelope
from fedseed.recipe.codec import canonical_bytes
from fedseed.recipe.model import Recipe
from fedseed.recipe.overrides import apply_assignment
from fedseed.recipe.portfolio import Portfolio
from fedseed.recipe.search import Scalar

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


#: Reported rejection reasons for verification failures.
_REASONS = {"unknown-key": "untrusted", "wrong-role": "untrusted", "revoked": "untrusted",
            "bad-signature": "bad signature", "invalid-recipe": "invalid recipe"}


@dataclass(frozen=True)
class ServerState:
    """Everything that carries from one round to the next."""

    meta: VerifiedRecipe
    baseline: VerifiedRecipe
    aggregator: AggregatorState = AggregatorState()
    bindings: Mapping[int, str] = field(default_factory=dict)  # node id -> key id (tofu)
    accepted: frozenset[str] = frozenset()  # every client recipe accepted so far


@dataclass(frozen=True)
class Judged:
    """The outcome of checking one reply: accepted (``reply``) or not (``reason``)."""

    node_id: int
    reply: ClientReply | None = None
    reason: str | None = None
    keyid: str | None = None


@dataclass(frozen=True)
class RoundReport:
    """One line of the per-round table."""

    round: int
    sampled: int
    accepted: int
    rejected: Mapping[str, int]
    val_mean: float | None
    val_p10: float | None
    bytes_down: int
    bytes_up: int
    meta_digest: str
    next_digest: str
    seconds: float
    array_records: int = 0
    client_steps: int = 0  # optimizer steps the accepted clients say they ran
    diverged: int = 0  # accepted replies whose run diverged (left out of val_mean/p10)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {**self.__dict__, "rejected": dict(self.rejected)}


def seal(recipe: Recipe, key: Ed25519PrivateKey, trust: TrustStore) -> VerifiedRecipe:
    """Sign ``recipe`` as the server and return it as a verified recipe."""
    kid = key_id(key.public_key())
    if recipe.lineage is not None:
        recipe = recipe.model_copy(update={"lineage": recipe.lineage.model_copy(update={
            "producer": kid, "created": datetime.now(timezone.utc).replace(microsecond=0)})})
    envelope = sign_recipe(recipe, key)
    return verify_envelope(envelope, trust, role="server", source="meta-recipe")


#: Clients that share one configuration in a round. One client's validation metric on
#: a few local examples is noise; the mean over a handful of clients is evidence.
CLIENTS_PER_CONFIG = 4


def plan_round(meta: Recipe, node_ids: Sequence[int], fraction: float, min_nodes: int,
               rng: random.Random) -> list[tuple[int, dict[str, Scalar]]]:
    """Sample ``max(min_nodes, fraction * n)`` nodes and deal them configurations.

    With a portfolio, configurations are dealt in proportion to their weights by
    systematic sampling (each gets its expected share of nodes, rounded, never a
    lucky streak). Without one, about one configuration per
    :data:`CLIENTS_PER_CONFIG` nodes is drawn from the search space.
    """
    nodes = sorted(node_ids)
    count = min(len(nodes), max(min_nodes, round(fraction * len(nodes))))
    chosen = rng.sample(nodes, count)
    if meta.portfolio is not None:
        return list(zip(chosen, deal(meta.portfolio, count, rng), strict=True))
    space = meta.search_space
    if space is None:
        return [(node, {}) for node in chosen]
    configs = [sample_assignment(space, rng)
               for _ in range(max(1, count // CLIENTS_PER_CONFIG))]
    return [(node, dict(configs[i % len(configs)])) for i, node in enumerate(chosen)]


def deal(portfolio: Portfolio, count: int, rng: random.Random) -> list[dict[str, Scalar]]:
    """``count`` assignments from ``portfolio`` by systematic sampling on its weights.

    The nodes are cut into ``count // group_size`` slots of at least ``group_size``
    nodes; each slot gets one configuration, drawn in proportion to the weights
    (systematic sampling: every configuration gets its expected share of slots,
    rounded), so every configuration that is tried is tried by a whole group.
    """
    slots = max(1, count // portfolio.group_size)
    offset = rng.random()
    bounds, cumulative = [], 0.0
    for candidate in portfolio.candidates:
        cumulative += candidate.weight
        bounds.append(cumulative)
    picks, j = [], 0
    for i in range(slots):
        u = (i + offset) / slots
        while j < len(bounds) - 1 and u >= bounds[j]:
            j += 1
        picks.append(j)
    out: list[dict[str, Scalar]] = [
        dict(portfolio.candidates[picks[i * slots // count]].assignment.items())
        for i in range(count)]
    rng.shuffle(out)
    return out


def judge_reply(
    node_id: int,
    envelope_bytes: bytes,
    pubkey_pem: bytes,
    assignment: Mapping[str, Scalar],
    state: ServerState,
    trust: TrustStore,
    mode: str,
    seen: set[str],
    *,
    tasks: Sequence[int] = (),
) -> Judged:
    """Accept a client recipe only if it is signed, trusted, fresh and well-formed.

    ``store``: signed by a key trusted for the ``client`` role. ``tofu``: signed by
    the key this node used before, or, on first sight, by the key it presents.
    Its parent must be this round's meta-recipe (an older parent is a replay), it
    must carry evidence, it must have run exactly the assigned configuration, its
    signed bytes must be canonical and name their signer as producer (so the same
    recipe cannot be re-encoded and counted twice), and a client recipe is counted
    once per run.
    """
    try:
        envelope = read_envelope(envelope_bytes, f"node {node_id}")
    except FedseedError:
        return Judged(node_id, reason="malformed")
    if not envelope.signatures:
        return Judged(node_id, reason="unsigned")
    try:
        if mode == "tofu":
            public = load_public_pem(pubkey_pem, f"node {node_id} public key")
            kid = key_id(public)
            bound = state.bindings.get(node_id)
            if bound is not None and bound != kid:
                return Judged(node_id, reason="key changed")
            known = trust.get(kid)
            if known is not None and known.revoked is not None:
                return Judged(node_id, reason="untrusted")
            node_trust, _ = TrustStore().add(public_pem(public), "client", f"node-{node_id}")
            verified = verify_envelope(envelope, node_trust, role="client")
        else:
            verified = verify_envelope(envelope, trust, role="client")
            kid = verified.keyids[0]
    except VerificationError as e:
        return Judged(node_id, reason=_REASONS.get(e.reason, e.reason))
    except (FedseedError, ValueError):
        return Judged(node_id, reason="malformed")
    recipe = verified.recipe
    parents = recipe.lineage.parents if recipe.lineage else []
    if parents != [state.meta.digest] or verified.digest in state.accepted:
        stale = verified.digest in state.accepted or (
            recipe.lineage is not None and recipe.lineage.round < state.aggregator.round)
        return Judged(node_id, reason="replayed" if stale or parents else "wrong parent")
    if recipe.evidence is None:
        return Judged(node_id, reason="no evidence")
    if not releases_only_what_it_may(recipe, state.meta.recipe):
        # Under a privacy section a device must release what it promises, no more.
        return Judged(node_id, reason="not private")
    if recipe.evidence.steps > _step_budget(recipe):
        # More steps than the (assigned, checked below) budget allows: the evidence
        # contradicts the recipe it comes with.
        return Judged(node_id, reason="inconsistent evidence")
    if canonical_bytes(recipe) != envelope.payload or recipe.lineage is None \
            or recipe.lineage.producer != kid:
        return Judged(node_id, reason="malformed")
    if not _ran(recipe, assignment, state.meta.recipe, tasks):
        return Judged(node_id, reason="wrong assignment")
    if verified.digest in seen:
        return Judged(node_id, reason="duplicate")
    seen.add(verified.digest)
    return Judged(node_id, keyid=kid, reply=ClientReply(recipe=recipe, digest=verified.digest,
                                                        node_id=node_id,
                                                        assignment=dict(assignment)))


def _ran(recipe: Recipe, assignment: Mapping[str, Scalar], meta: Recipe,
         tasks: Sequence[int] = ()) -> bool:
    """Whether ``recipe`` is exactly the meta-recipe with ``assignment`` applied, apart
    from its evidence and lineage: a client reports on what it was dealt, and cannot
    change anything else (a budget, the task, early stopping) that the checks of its
    evidence or the aggregators would then trust."""
    for path, value in assignment.items():
        section, _, field_name = path.partition(".")
        if getattr(getattr(recipe, section, None), field_name, object()) != value:
            return False
    try:
        expected = apply_assignment(meta, assignment) if assignment else meta
    except FedseedError:
        return False
    if recipe.task != meta.task:  # another task: only one the operator allowed
        if not task_allowed(recipe.task, meta.task, tasks):
            return False
        expected = expected.model_copy(update={"task": recipe.task})
    blank = {"search_space": None, "portfolio": None, "evidence": None, "lineage": None}
    return canonical_bytes(_without_numbers(expected).model_copy(update=blank)) == \
        canonical_bytes(_without_numbers(recipe).model_copy(update=blank))


def _step_budget(recipe: Recipe) -> int:
    """The most steps a client may report: its zeroth-order steps for a seed update,
    else the training budget."""
    t = recipe.trajectory
    return t.steps if t is not None and t.update is not None else recipe.budget.max_steps


def _without_numbers(recipe: Recipe) -> Recipe:
    """The recipe with its trajectory's coefficients and update blanked: a client
    reply carries an update instead of its parent's coefficients."""
    if recipe.projection is not None:  # a reply answers the next round's bases
        recipe = recipe.model_copy(update={"projection": recipe.projection.model_copy(
            update={"coefficients": None, "update": None, "round": 0, "previous": None})})
    if recipe.trajectory is None:
        return recipe
    return recipe.model_copy(update={"trajectory": recipe.trajectory.model_copy(
        update={"coefficients": None, "update": None})})


def summarize(round_: int, sampled: int, judged: Sequence[Judged], failures: Counter[str],
              bytes_down: int, bytes_up: int, meta_digest: str, next_digest: str,
              seconds: float) -> RoundReport:
    """The round's table line from its judged replies and transport failures."""
    accepted = [j.reply for j in judged if j.reply is not None]
    rejected = Counter(j.reason for j in judged if j.reason is not None) + failures
    # A diverged reply's metrics are sentinels (the worst value), not measurements:
    # counted apart, they would otherwise make a perplexity mean meaningless.
    diverged = [r for r in accepted if r.recipe.evidence.diverged]  # type: ignore[union-attr]
    # Private replies release no metric (fedseed.privacy.mechanisms).
    metrics = sorted(r.recipe.evidence.final.val_metric for r in accepted  # type: ignore[union-attr]
                     if not r.recipe.evidence.diverged  # type: ignore[union-attr]
                     and r.recipe.evidence.release == "exact")  # type: ignore[union-attr]
    return RoundReport(
        round=round_, sampled=sampled, accepted=len(accepted), rejected=dict(rejected),
        val_mean=statistics.fmean(metrics) if metrics else None,
        val_p10=percentile(metrics, 10) if metrics else None,
        bytes_down=bytes_down, bytes_up=bytes_up, meta_digest=meta_digest,
        next_digest=next_digest, seconds=round(seconds, 2),
        # misc: the ignored attribute reads as Any, which picks sum()'s bool overload.
        client_steps=sum(r.recipe.evidence.steps for r in accepted  # type: ignore[union-attr, misc]
                         ),
        diverged=len(diverged),
    )


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank) of already sorted values."""
    index = max(0, min(len(sorted_values) - 1, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[index]


def bind_keys(state: ServerState, judged: Sequence[Judged]) -> ServerState:
    """Remember the key each accepted node signed with (trust on first use)."""
    bindings = dict(state.bindings)
    for j in judged:
        if j.reply is not None and j.keyid is not None:
            bindings.setdefault(j.node_id, j.keyid)
    digests = {j.reply.digest for j in judged if j.reply is not None}
    return replace(state, bindings=bindings, accepted=state.accepted | digests)


def assignment_text(assignment: Mapping[str, Scalar]) -> str:
    """The assignment as it travels: canonical JSON text."""
    return json.dumps(dict(assignment), sort_keys=True, separators=(",", ":"))
