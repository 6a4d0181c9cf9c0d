"""The fedseed ClientApp: verify the meta-recipe, train on this device's data, reply
with a signed client recipe. Weights stay on the device.

Node config (``flower-supernode --node-config``): ``data`` (path to the device's
CSV/JSONL/Parquet/save_to_disk data), ``key`` (name of its signing key under
``$FEDSEED_HOME/keys``), optional ``text-column`` and ``label-column``, and
``num-labels`` for a device whose task has another label count than the recipe's
(a federation of several tasks: fedseed.meta.tasks), and ``dp-require`` /
``dp-max-epsilon`` / ``dp-max-delta``, the device's own privacy policy
(fedseed.privacy.device). Simulated nodes
get ``partition-id``/``num-partitions`` from Flower and a key made on first use.

A user's own ClientApp can wrap the same round logic with its own data:
``make_client_app(examples=...)`` takes in-memory :class:`~fedseed.data.examples.Examples`,
or a callable that returns a node's examples from its Flower ``Context``; ``train`` and
``evaluate`` take the same ``examples`` argument (docs/library.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from flwr.app import ConfigRecord, Context, Error, Message, RecordDict
from flwr.clientapp import ClientApp

from fedseed.app.wire import bytes_field, metric_record, record
from fedseed.data.examples import Examples
from fedseed.errors import DataError, FedseedError, VerificationError
from fedseed.federation import protocol
from fedseed.federation.client import (
    final_round,
    load_identity,
    node_examples,
    train_round,
    use_registry,
    verify_meta,
    weights_path_for,
)
from fedseed.privacy.device import Ledger, policy_from_node_config
from fedseed.provenance.trust import load_trust

log = logging.getLogger(__name__)

#: Error codes a client replies with instead of a recipe.
REFUSED, FAILED = 403, 500

#: A node's data: its examples, or a function of its Flower context that returns them.
ExamplesSource = Examples | Callable[[Context], Examples]
#: A node's own task fields (``{"task.num_labels": 2}``), or a function of its context.
TaskSource = Mapping[str, Any] | Callable[[Context], Mapping[str, Any] | None]


def _task(context: Context, task: TaskSource | None) -> Mapping[str, Any] | None:
    """This node's task fields where they differ from the recipe's: given by the
    caller, or the node config's ``num-labels``."""
    if callable(task):
        return task(context) or None
    if task:
        return task
    value = context.node_config.get("num-labels")
    if value is None:
        return None
    try:
        return {"task.num_labels": int(value)}
    except (TypeError, ValueError):
        raise DataError(f"node config num-labels = {value!r} is not a whole number of "
                        f"labels") from None


def _identity(context: Context):
    config = context.node_config
    if "key" in config:
        return load_identity(str(config["key"]))
    simulated = "partition-id" in config
    name = f"node-{config['partition-id']}" if simulated else f"node-{context.node_id}"
    return load_identity(name, create=simulated)


def _ledger(context: Context) -> Ledger:
    """This node's privacy ledger, next to its weights, on its own disk."""
    return Ledger(weights_path_for(context.node_id).parent / "privacy-ledger.json")


def _refuse(msg: Message, code: int, error: FedseedError) -> Message:
    log.warning("refusing round: %s", error.diagnostics())
    return Message(Error(code=code, reason=error.diagnostics()), reply_to=msg)


def _config(context: Context, run_config: Mapping[str, Any] | None) -> Mapping[str, Any]:
    config = context.run_config if run_config is None else run_config
    use_registry(str(config.get("registry", "")) or None)  # a projection chain's source
    return config


def _examples(context: Context, run_config: Mapping[str, Any] | None,
              examples: ExamplesSource | None, recipe: Any) -> Examples:
    """The node's examples: given in memory, by the caller's function, or from the
    node and run config (a device's files, a simulated partition)."""
    config = _config(context, run_config)  # also names a projection chain's registry
    if isinstance(examples, Examples):
        return examples
    if examples is not None:
        found = examples(context)
        if not isinstance(found, Examples):
            raise DataError(f"the ClientApp's examples function returned "
                            f"{type(found).__name__}, not fedseed Examples")
        return found
    return node_examples(context.node_config, config, recipe)


def train(msg: Message, context: Context, run_config: Mapping[str, Any] | None = None,
          examples: ExamplesSource | None = None, task: TaskSource | None = None) -> Message:
    """One round: verify, train the assigned configuration, sign the client recipe."""
    values = record(msg)
    try:
        meta = verify_meta(bytes_field(values, protocol.META), load_trust())
    except FedseedError as e:
        return _refuse(msg, REFUSED, e)
    try:
        identity = _identity(context)
        data = _examples(context, run_config, examples, meta.recipe)
        policy = policy_from_node_config(context.node_config)
        envelope, metrics = train_round(meta, str(values.get(protocol.ASSIGNMENT, "")),
                                        data, identity, weights_path_for(context.node_id),
                                        task=_task(context, task), policy=policy,
                                        ledger=_ledger(context) if policy else None)
    except VerificationError as e:  # this device's privacy policy refused the round
        return _refuse(msg, REFUSED, e)
    except FedseedError as e:
        return _refuse(msg, FAILED, e)
    content = RecordDict({
        protocol.RECORD: ConfigRecord({protocol.RECIPE: envelope,
                                       protocol.PUBKEY: identity.pubkey_pem}),
        protocol.METRICS: metric_record(metrics),
    })
    return Message(content, reply_to=msg)


def evaluate(msg: Message, context: Context, run_config: Mapping[str, Any] | None = None,
             examples: ExamplesSource | None = None, task: TaskSource | None = None
             ) -> Message:
    """Final personalization: from the last meta-recipe and from the round-0 recipe."""
    values = record(msg)
    try:
        trust = load_trust()
        meta = verify_meta(bytes_field(values, protocol.META), trust)
        baseline = verify_meta(bytes_field(values, protocol.BASELINE), trust)
    except FedseedError as e:
        return _refuse(msg, REFUSED, e)
    try:
        data = _examples(context, run_config, examples, meta.recipe)
        metrics = final_round(meta, baseline, data, weights_path_for(context.node_id),
                              task=_task(context, task),
                              policy=policy_from_node_config(context.node_config))
    except VerificationError as e:
        return _refuse(msg, REFUSED, e)
    except FedseedError as e:
        return _refuse(msg, FAILED, e)
    return Message(RecordDict({protocol.METRICS: metric_record(metrics)}), reply_to=msg)


def make_client_app(run_config: Mapping[str, Any] | None = None,
                    examples: ExamplesSource | None = None,
                    task: TaskSource | None = None) -> ClientApp:
    """The fedseed ClientApp.

    ``run_config`` replaces the run's config when given (an in-process simulation has
    no Flower run config to carry the data set's name). ``examples``: the node's data
    in memory, or a function of its ``Context`` returning it, instead of the node
    config's ``data`` path or a built-in partition. ``task``: the node's own task
    fields, or a function of its ``Context`` returning them, instead of the node
    config's ``num-labels``.
    """
    app = ClientApp()

    @app.train()
    def _train(msg: Message, context: Context) -> Message:
        return train(msg, context, run_config, examples, task)

    @app.evaluate()
    def _evaluate(msg: Message, context: Context) -> Message:
        return evaluate(msg, context, run_config, examples, task)

    return app


app = make_client_app()
