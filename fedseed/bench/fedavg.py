"""The weight-exchanging baseline: Flower's own FedAvg on the same recipe and partitions.

fedseed's claim is that recipes travel where weights used to; the fair comparison is
the textbook algorithm, run by Flower itself (``flwr.serverapp.strategy.FedAvg``,
McMahan et al., 2017, https://arxiv.org/abs/1602.05629) and not a re-implementation
that could flatter either side. fedseed supplies only what FedAvg leaves to the
application: the model (:func:`fedseed.assemble.assemble`, so both sides start from
the same weights), the local optimizer steps (the recipe's optimizer, batch size and
clipping, as :mod:`fedseed.train.loop` does them) and a byte count taken from the
messages that actually cross the Grid, in the same units as fedseed's own.

Flower and torch are imported inside functions: ``fedseed`` must start fast.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fedseed.app.simulation import backend_config, join_ray_cluster
from fedseed.assemble import assemble
from fedseed.data.examples import split_examples
from fedseed.data.tensors import num_rows, to_tensors
from fedseed.errors import AggregationError

if TYPE_CHECKING:
    import torch

    from fedseed.data.examples import Examples
    from fedseed.recipe.model import Recipe

log = logging.getLogger(__name__)

#: MetricRecord keys of a client's reply; FedAvg weights by ``num-examples`` (under
#: DP by ``dp-weight``, 1 for everyone: Flower's accounted DP requires equal weights).
NUM_EXAMPLES, TRAIN_LOSS, NUM_STEPS = "num-examples", "train-loss", "num-steps"
DP_WEIGHT = "dp-weight"


@dataclass(frozen=True)
class FedAvgPrivacy:
    """Flower's central DP for FedAvg (``DifferentialPrivacyServerSideFixedClipping``):
    each client's model update clipped to ``clip``, Gaussian noise of
    ``noise_multiplier x clip / sampled`` on the mean, accounted by Flower's own RDP
    accountant (no amplification) at ``delta``."""

    noise_multiplier: float
    clip: float
    delta: float
#: MetricRecord key of a node's answer to "which partition do you hold?".
PARTITION = "partition-id"
#: Seconds to wait for every simulated node to register and answer before the first
#: round: a hang guard, far above what a slow, cold machine needs (nodes start their
#: ClientApp workers, which import torch, before they answer).
CONNECT_TIMEOUT = 900.0


@dataclass(frozen=True)
class FedAvgResult:
    """What the baseline cost and produced, in the units fedseed reports its own runs.

    Bytes and steps are means over *all* federated clients (sampled or not), so a
    run with ``fraction < 1`` is charged what its clients actually paid.
    """

    state_dict: dict[str, torch.Tensor]
    rounds: int
    bytes_down_per_client: float
    bytes_up_per_client: float
    steps_per_client: float
    wall_seconds: float
    history: list[dict[str, float]]
    #: Under DP: Flower's accountant's figure (epsilon, delta, releases).
    privacy: dict[str, float] = field(default_factory=dict)


def run_fedavg(recipe: Recipe, clients: Sequence[Examples], *, rounds: int, local_steps: int,
               fraction: float = 1.0, seed: int = 0, parallel: int = 2,
               on_round: Callable[[int], None] | None = None,
               privacy: FedAvgPrivacy | None = None) -> FedAvgResult:
    """Run Flower's FedAvg for ``rounds`` rounds on one simulated node per client.

    Each sampled node trains the global model on its own ``train`` split (the
    recipe's split) for ``local_steps`` steps at the recipe's constant learning rate
    and replies with its weights; nothing is evaluated federatedly, so the caller
    scores the returned ``state_dict`` exactly as it scores fedseed's models.
    ``seed`` fixes node sampling and every client's batch order. Safe to call
    repeatedly in one process: Flower shuts Ray down at the end of each run.
    """
    from flwr.simulation import run_simulation

    if not clients:
        raise AggregationError("FedAvg needs at least one client")
    for examples in clients:  # a client too small to split fails here, not in a worker
        split_examples(examples, recipe.split)
    if rounds < 1 or local_steps < 1 or not 0.0 < fraction <= 1.0:
        raise AggregationError(f"FedAvg: rounds ({rounds}) and local_steps ({local_steps}) "
                               f"must be >= 1 and fraction ({fraction}) in (0, 1]")
    outcome: list[tuple[Any, _CountingGrid, dict[str, float]]] = []
    flwr_logger = logging.getLogger("flwr")
    level = flwr_logger.level
    # run_simulation is deprecated in favour of `flwr run` and FedAvg warns that
    # evaluation is off; both are deliberate here.
    flwr_logger.setLevel(logging.ERROR)
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    started = time.perf_counter()
    try:
        join_ray_cluster()
        run_simulation(
            server_app=_server_app(recipe, len(clients), rounds, fraction, seed, on_round,
                                   outcome, privacy),
            client_app=_client_app(recipe, tuple(clients), local_steps, seed),
            num_supernodes=len(clients),
            backend_config=backend_config(parallel),
        )
    finally:
        flwr_logger.setLevel(level)
    wall = time.perf_counter() - started
    if not outcome:
        raise AggregationError("FedAvg: the simulation ended without a result")
    result, grid, spent = outcome[0]
    if not any(row["replies"] for row in grid.history):
        # Flower's reason is a whole remote traceback; its last line names the cause.
        reason = grid.errors[0].strip().splitlines()[-1] if grid.errors else "no reply"
        raise AggregationError(f"FedAvg: no client replied in any round ({reason})")
    n = len(clients)
    return FedAvgResult(
        state_dict=_global_state_dict(recipe, result.arrays),
        rounds=rounds,
        bytes_down_per_client=sum(grid.bytes_down.values()) / n,
        bytes_up_per_client=sum(grid.bytes_up.values()) / n,
        steps_per_client=sum(grid.steps.values()) / n,
        wall_seconds=wall,
        history=list(grid.history),
        privacy=spent,
    )


def exchanged_keys(model: torch.nn.Module) -> list[str]:
    """State-dict keys FedAvg sends: floating tensors, each tied tensor once.

    GPT-2 ties its head to its embedding; sending both would double-charge the
    baseline. Integer buffers are not averageable and follow from the recipe anyway.
    """
    seen: set[tuple[int, tuple[int, ...]]] = set()
    keys = []
    for name, tensor in model.state_dict(keep_vars=True).items():
        identity = (tensor.data_ptr(), tuple(tensor.shape))
        if tensor.is_floating_point() and identity not in seen:
            seen.add(identity)
            keys.append(name)
    return keys


def local_train(recipe: Recipe, model: torch.nn.Module, examples: Examples,
                steps: int, seed: int) -> tuple[int, float]:
    """``steps`` optimizer steps on the recipe's train split; (train rows, mean loss).

    The step is :mod:`fedseed.train.loop`'s (same loss, clipping and batch order),
    without its schedule, evaluation and early stopping: FedAvg's local update is
    plain SGD-style steps at a constant rate, and a fresh optimizer per round.
    """
    import torch

    from fedseed.train.loop import batch_order
    from fedseed.train.objectives import logits_of, loss_sum, trim_padding
    from fedseed.train.optim import build_optimizer

    data = to_tensors(split_examples(examples, recipe.split).train, recipe)
    rows = num_rows(data)
    optimizer = build_optimizer(recipe.optimizer, model)
    clip = recipe.budget.grad_clip
    total = 0.0
    model.train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for index in batch_order(rows, recipe.budget.batch_size, steps, seed):
            batch = trim_padding({k: v[index] for k, v in data.items()})
            summed, terms = loss_sum(logits_of(model, batch, recipe), batch, recipe)
            loss = summed / max(1, terms)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
            total += float(loss.detach())
    return rows, total / steps


def _batch_seed(seed: int, round_: int, partition: int) -> int:
    """A distinct batch order per (run seed, round, client)."""
    return ((seed * 1_000_003 + round_) * 1_000_033 + partition) % 2**63


def _load(recipe: Recipe, arrays: Any) -> torch.nn.Module:
    """The recipe's model holding ``arrays`` (tied and integer tensors follow)."""
    model = assemble(recipe)
    missing, unexpected = model.load_state_dict(arrays.to_torch_state_dict(), strict=False)
    if unexpected or set(missing) & set(exchanged_keys(model)):
        raise AggregationError(f"FedAvg: weights do not fit recipe '{recipe.name}' "
                               f"(unexpected {unexpected[:3]}, missing {missing[:3]})")
    return model


def _global_state_dict(recipe: Recipe, arrays: Any) -> dict[str, torch.Tensor]:
    model = _load(recipe, arrays)
    return {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}


def _client_app(recipe: Recipe, clients: tuple[Examples, ...], local_steps: int,
                seed: int) -> Any:
    """A ClientApp that trains node ``partition-id`` on ``clients[partition-id]``.

    The data travels inside the closure (Ray pickles it by value with every message).
    """
    import torch
    from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp

    app = ClientApp()

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        torch.set_num_threads(1)
        partition = int(context.node_config["partition-id"])
        round_ = int(msg.content["config"]["server-round"])
        model = _load(recipe, msg.content["arrays"])
        rows, loss = local_train(recipe, model, clients[partition], local_steps,
                                 _batch_seed(seed, round_, partition))
        state = model.state_dict()
        arrays = ArrayRecord.from_torch_state_dict(
            {k: state[k] for k in exchanged_keys(model)})
        metrics = MetricRecord({NUM_EXAMPLES: rows, TRAIN_LOSS: loss, NUM_STEPS: local_steps,
                                DP_WEIGHT: 1.0})
        return Message(RecordDict({"arrays": arrays, "metrics": metrics}), reply_to=msg)

    @app.query()
    def query(msg: Message, context: Context) -> Message:
        partition = int(context.node_config["partition-id"])
        return Message(RecordDict({"node": MetricRecord({PARTITION: partition})}), reply_to=msg)

    return app


def _server_app(recipe: Recipe, nodes: int, rounds: int, fraction: float, seed: int,
                on_round: Callable[[int], None] | None,
                outcome: list[tuple[Any, _CountingGrid, dict[str, float]]],
                privacy: FedAvgPrivacy | None = None) -> Any:
    """A ServerApp running Flower's FedAvg (wrapped in Flower's own central DP under
    ``privacy``); its Result, tally and privacy spent land in ``outcome``."""
    from flwr.app import ArrayRecord, Context
    from flwr.serverapp import Grid, ServerApp
    from flwr.serverapp.strategy import FedAvg

    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        counting = _CountingGrid(grid, _nodes_by_partition(grid, nodes), on_round)
        model = assemble(recipe)
        state = model.state_dict()
        initial = ArrayRecord.from_torch_state_dict({k: state[k] for k in exchanged_keys(model)})
        strategy: Any = FedAvg(fraction_train=fraction, fraction_evaluate=0.0,
                               min_train_nodes=1, min_available_nodes=nodes,
                               weighted_by_key=DP_WEIGHT if privacy else NUM_EXAMPLES)
        if privacy is not None:
            from flwr.serverapp import (
                NeighboringRelation,
                PrivacyConfig,
                RdpAccountant,
                SamplingMethod,
            )
            from flwr.serverapp.strategy import DifferentialPrivacyServerSideFixedClipping

            sampled = max(1, int(fraction * nodes))  # FedAvg's own sample size
            accountant = RdpAccountant(PrivacyConfig(
                target_delta=privacy.delta, population_size=nodes,
                neighboring_relation=NeighboringRelation.ADD_OR_REMOVE_ONE,
                sampling_method=SamplingMethod.NO_AMPLIFICATION))
            strategy = DifferentialPrivacyServerSideFixedClipping(
                strategy, noise_multiplier=privacy.noise_multiplier,
                clipping_norm=privacy.clip, num_sampled_clients=sampled,
                accountant=accountant)
        # FedAvg samples with the global `random`; seed it for this run only.
        saved = random.getstate()
        random.seed(seed)
        try:
            result = strategy.start(grid=counting, initial_arrays=initial,
                                    num_rounds=rounds)
        finally:
            random.setstate(saved)
        spent: dict[str, float] = {}
        if privacy is not None:
            p = strategy.privacy_spent()
            spent = {"epsilon": p.epsilon, "delta": p.delta, "releases": p.num_releases}
        outcome.append((result, counting, spent))

    return app


def _nodes_by_partition(grid: Any, nodes: int) -> list[int]:
    """Node ids in partition order, once every simulated node is registered.

    Node ids are random and Flower lists them as a set, so FedAvg's seeded sample
    would pick different partitions in every run; ordered, the same seed picks the
    same clients. Waiting matters too: FedAvg sizes its sample from the nodes
    connected *before* it waits for the minimum, and nodes register gradually.
    The query round goes around the counting grid: it is not part of FedAvg.
    """
    from flwr.app import Message, MessageType, RecordDict

    deadline = time.monotonic() + CONNECT_TIMEOUT
    while len(ids := list(grid.get_node_ids())) < nodes:
        if time.monotonic() > deadline:
            raise AggregationError(f"FedAvg: {len(ids)} of {nodes} nodes connected within "
                                   f"{CONNECT_TIMEOUT:.0f}s")
        time.sleep(0.1)
    queries = [Message(RecordDict(), dst_node_id=node, message_type=MessageType.QUERY)
               for node in ids]
    replies = grid.send_and_receive(queries, timeout=CONNECT_TIMEOUT)
    partition = {r.metadata.src_node_id: int(_metrics(r)[PARTITION]) for r in replies
                 if PARTITION in _metrics(r)}
    if len(partition) < nodes:
        raise AggregationError(f"FedAvg: only {len(partition)} of {nodes} nodes said which "
                               "partition they hold")
    return sorted(partition, key=partition.__getitem__)


def message_bytes(message: Any) -> int:
    """Payload bytes of a message: ArrayRecord data and keys (Flower's own count)
    plus config and metric records counted as :func:`fedseed.app.wire.payload_bytes`
    counts fedseed's messages, so the two sides are compared in the same units."""
    from fedseed.app.wire import payload_bytes

    if not message.has_content():
        return 0
    arrays = sum(r.count_bytes() for r in message.content.array_records.values())
    return arrays + payload_bytes(message)


class _CountingGrid:
    """A Grid that forwards everything and tallies what crosses it, per node.

    Bytes are counted from the messages themselves (sent before forwarding, replies
    on arrival); steps and losses from what clients report.
    """

    def __init__(self, grid: Any, nodes: list[int],
                 on_round: Callable[[int], None] | None) -> None:
        self._grid = grid
        self._nodes = nodes
        self._on_round = on_round
        self.bytes_down: dict[int, int] = defaultdict(int)
        self.bytes_up: dict[int, int] = defaultdict(int)
        self.steps: dict[int, float] = defaultdict(float)
        self.history: list[dict[str, float]] = []
        self.errors: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._grid, name)

    def get_node_ids(self) -> Iterable[int]:
        """The nodes in partition order (FedAvg samples from these)."""
        return list(self._nodes)

    def push_messages(self, messages: Iterable[Any]) -> Iterable[str]:
        """Forwarded, after counting what goes down."""
        messages = list(messages)
        self._sent(messages)
        return self._grid.push_messages(messages)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Any]:
        """Forwarded, counting what comes up."""
        replies = list(self._grid.pull_messages(message_ids))
        self._received(replies)
        return replies

    def send_and_receive(self, messages: Iterable[Any], *,
                         timeout: float | None = None) -> Iterable[Any]:
        """Forwarded; a training round also becomes a row of the history."""
        messages = list(messages)
        if not messages:  # FedAvg "sends" an empty evaluation round: nothing crosses
            return []
        self._sent(messages)
        replies = list(self._grid.send_and_receive(messages, timeout=timeout))
        self._received(replies)
        if messages[0].metadata.message_type.startswith("train"):
            self._record_round(messages, replies)
        return replies

    def _sent(self, messages: list[Any]) -> None:
        for message in messages:
            self.bytes_down[message.metadata.dst_node_id] += message_bytes(message)

    def _received(self, replies: list[Any]) -> None:
        for reply in replies:
            node = reply.metadata.src_node_id
            self.bytes_up[node] += message_bytes(reply)
            if reply.has_error():
                self.errors.append(reply.error.reason)
            elif NUM_STEPS in (metrics := _metrics(reply)):
                self.steps[node] += float(metrics[NUM_STEPS])

    def _record_round(self, messages: list[Any], replies: list[Any]) -> None:
        round_ = int(messages[0].content["config"]["server-round"])
        rows = [_metrics(r) for r in replies if not r.has_error()]
        weight = sum(float(m.get(NUM_EXAMPLES, 0.0)) for m in rows)
        loss = (sum(float(m[NUM_EXAMPLES]) * float(m[TRAIN_LOSS]) for m in rows) / weight
                if weight else float("nan"))
        if len(rows) < len(messages):
            log.warning("FedAvg round %d: %d of %d sampled clients replied", round_,
                        len(rows), len(messages))
        self.history.append({"round": float(round_), "sampled": float(len(messages)),
                             "replies": float(len(rows)), "train_loss": loss})
        if self._on_round is not None:
            self._on_round(round_)


def _metrics(reply: Any) -> dict[str, Any]:
    """The reply's (single) MetricRecord as a dict, empty when absent."""
    records = list(reply.content.metric_records.values()) if reply.has_content() else []
    return dict(records[0]) if records else {}
