"""Client-side round logic, free of Flower: verify the meta-recipe, train locally,
sign the client recipe. The Flower ClientApp (:mod:`fedseed.app.client_app`) only
moves bytes between this module and the SuperNode.

The personalised weights never leave this module except to the device's own disk.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fedseed.assemble import assemble, save_weights
from fedseed.data.builtin import BUILTIN_DATASETS, load_builtin_dataset
from fedseed.data.examples import Examples, split_examples
from fedseed.data.fortunes import load_fortunes
from fedseed.data.local import load_examples, load_users
from fedseed.data.partition import check_partitioner, partition
from fedseed.data.tensors import to_tensors
from fedseed.errors import DataError, SignatureError, VerificationError
from fedseed.home import fedseed_home
from fedseed.personalize import personalize_examples
from fedseed.privacy.device import DevicePolicy, Ledger, check_round
from fedseed.privacy.mechanisms import private_reply
from fedseed.provenance.keys import generate_key, key_id, load_private_key, public_pem
from fedseed.provenance.packed import pack, read_envelope
from fedseed.provenance.sign import sign_recipe
from fedseed.provenance.trust import TrustStore, load_trust
from fedseed.provenance.verify import VerifiedRecipe, verify_envelope
from fedseed.registry.client import open_registry
from fedseed.trajectory.chain import ChainCache, shared_model
from fedseed.trajectory.first_order import fo_train
from fedseed.trajectory.zo import zo_train

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


@dataclass(frozen=True)
class Identity:
    """A client's signing key."""

    key: Ed25519PrivateKey
    keyid: str
    pubkey_pem: bytes


def load_identity(name: str, home: Path | None = None, *, create: bool = False) -> Identity:
    """The client key called ``name``; made on first use when ``create`` is set
    (simulated nodes), required to exist otherwise (real devices)."""
    try:
        key, kid = load_private_key(name, home)
    except SignatureError:
        if not create:
            raise
        # Another process of the same node may make it meanwhile: then use theirs.
        with contextlib.suppress(SignatureError):
            generate_key(name, home)
        key, kid = load_private_key(name, home)
    return Identity(key=key, keyid=kid, pubkey_pem=public_pem(key.public_key()))


def new_identity() -> Identity:
    """A fresh signing key held in memory only (in-process nodes, tests)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    return Identity(key=key, keyid=key_id(key.public_key()),
                    pubkey_pem=public_pem(key.public_key()))


def verify_meta(meta_bytes: bytes, trust: TrustStore) -> VerifiedRecipe:
    """The meta-recipe, only if a key trusted for the ``server`` role signed it."""
    return verify_envelope(read_envelope(meta_bytes, "meta-recipe"), trust, role="server",
                           source="meta-recipe")


@lru_cache(maxsize=4)
def _partitions(dataset: str, num_partitions: int, partitioner: str, alpha: float,
                seed: int) -> tuple[Examples, ...]:
    check_partitioner(dataset, partitioner)
    if dataset == "fortunes":  # one user per category file, the largest first
        users = tuple(load_fortunes(max_users=num_partitions).values())
        if len(users) < num_partitions:
            raise DataError(f"fortunes: {num_partitions} nodes but only {len(users)} "
                            "categories with enough quotes")
        return users
    if dataset not in BUILTIN_DATASETS:
        raise DataError(f"dataset '{dataset}' is not built in; simulated nodes partition "
                        f"{', '.join(BUILTIN_DATASETS)} or fortunes, devices set node "
                        "config 'data'")
    return tuple(partition(load_builtin_dataset(dataset), num_partitions,
                           partitioner=partitioner, alpha=alpha,  # type: ignore[arg-type]
                           seed=seed))


#: Partitions of a data file, by what they were cut with (a simulation's nodes share
#: one process per worker, and each would otherwise read the whole file every round).
_FILE_PARTITIONS: dict[tuple[Any, ...], tuple[Examples, ...]] = {}


def file_partitions(ref: str, recipe: Any, num_partitions: int, *, partition_by: str = "",
                    partitioner: str = "dirichlet", alpha: float = 0.5, seed: int = 0,
                    text_column: str = "text", label_column: str = "label",
                    check_count: bool = True) -> tuple[Examples, ...]:
    """The users of data file ``ref``: one per value of column ``partition_by`` (sorted),
    or ``num_partitions`` iid / Dirichlet parts of it (``check_count=False``: as many
    users as the column has, whatever ``num_partitions`` says)."""
    # Examples depend on the recipe only through its task (labels, modality).
    key = (ref, partition_by or num_partitions, partitioner, alpha, seed, text_column,
           label_column, recipe.task.model_dump_json())
    if key not in _FILE_PARTITIONS:
        if partition_by:
            users = tuple(load_users(ref, recipe, partition_by=partition_by,
                                     text_column=text_column,
                                     label_column=label_column).values())
            if check_count and len(users) != num_partitions:
                raise DataError(f"{ref}: column '{partition_by}' has {len(users)} users but "
                                f"the federation has {num_partitions} nodes; run one node "
                                "per user")
        else:
            whole = load_examples(ref, recipe, text_column=text_column,
                                  label_column=label_column)
            users = tuple(partition(whole, num_partitions,
                                    partitioner=partitioner,  # type: ignore[arg-type]
                                    alpha=alpha, seed=seed))
        _FILE_PARTITIONS.clear()  # one federation's data at a time
        _FILE_PARTITIONS[key] = users
    return _FILE_PARTITIONS[key]


def node_examples(node_config: Mapping[str, Any], run_config: Mapping[str, Any],
                  recipe: Any) -> Examples:
    """This node's examples: a partition in simulation (of a built-in set or of the run
    config's ``data`` file), the device's files otherwise."""
    if "data" in node_config:
        return load_examples(str(node_config["data"]), recipe,
                             text_column=str(node_config.get("text-column", "text")),
                             label_column=str(node_config.get("label-column", "label")))
    if "partition-id" not in node_config:
        raise DataError("node config has neither 'data' (a device's data path) nor "
                        "'partition-id' (a simulated node)")
    if run_config.get("data"):
        parts = file_partitions(
            str(run_config["data"]), recipe, int(node_config["num-partitions"]),
            partition_by=str(run_config.get("partition-by", "")),
            partitioner=str(run_config.get("partitioner", "dirichlet")),
            alpha=float(run_config.get("alpha", 0.5)), seed=int(run_config.get("seed", 0)),
            text_column=str(run_config.get("text-column", "text")),
            label_column=str(run_config.get("label-column", "label")))
        return parts[int(node_config["partition-id"])]
    parts = _partitions(str(run_config.get("dataset", "digits")),
                        int(node_config["num-partitions"]),
                        str(run_config.get("partitioner", "dirichlet")),
                        float(run_config.get("alpha", 0.5)), int(run_config.get("seed", 0)))
    return parts[int(node_config["partition-id"])]


def train_round(meta: VerifiedRecipe, assignment_json: str, examples: Examples,
                identity: Identity, weights_path: Path | None, *,
                chain: ChainSource | None = None, task: Mapping[str, Any] | None = None,
                policy: DevicePolicy | None = None, ledger: Ledger | None = None
                ) -> tuple[bytes, dict[str, float]]:
    """Run the assigned configuration; return the signed client recipe and metrics.
    ``chain``: where a first-order run fetches missed meta-recipes (default: the
    trust store and registry of ``$FEDSEED_HOME``, or :func:`use_registry`'s).
    ``task``: this device's own task fields (``task.num_labels``), where the
    federation mixes tasks (fedseed.meta.tasks; mode recipes only). ``policy``: this
    device's own privacy policy, checked against its ``ledger`` before it trains
    (fedseed.privacy.device)."""
    if policy is not None:
        if ledger is None:
            raise DataError("a device privacy policy needs a ledger of its releases")
        sigma = check_round(meta.recipe, policy, ledger)
        reply = train_round(meta, assignment_json, examples, identity, weights_path,
                            chain=chain, task=task)
        ledger.record(meta.recipe.name, sigma)  # spent once the reply exists
        return reply
    assignment = json.loads(assignment_json) if assignment_json else {}
    if task and (meta.recipe.trajectory is not None or meta.recipe.projection is not None):
        raise DataError("this device's task differs from the recipe's, and a seed "
                        "trajectory shares one model, so one task: federate it in mode "
                        "recipes, or give it the recipe's task")
    if meta.recipe.trajectory is not None:
        return _zo_round(meta, examples, identity, weights_path)
    if meta.recipe.projection is not None:
        return _fo_round(meta, examples, identity, weights_path, chain)
    done = personalize_examples(meta.recipe, examples, assignment=assignment or None,
                                method="client", task=task)
    return signed_reply(done.recipe, done.result.model, identity, weights_path)


def signed_reply(child: Any, model: Any, identity: Identity, weights_path: Path | None,
                 extra: dict[str, float] | None = None) -> tuple[bytes, dict[str, float]]:
    """The client recipe stamped with this node as producer, signed and packed, and the
    round metrics; the weights stay on the node (``weights_path``), in every mode."""

    assert child.lineage is not None and child.evidence is not None
    # Under the meta-recipe's privacy section: clipped, noised or withheld as it says.
    child = private_reply(child)
    child = child.model_copy(update={"lineage": child.lineage.model_copy(
        update={"producer": identity.keyid})})
    if weights_path is not None:
        _keep_weights(model, weights_path, child)
    envelope = sign_recipe(child, identity.key, identity.keyid)
    ev = child.evidence
    return pack(envelope), {"num-examples": float(ev.num_examples.train),
                            "val-metric": ev.final.val_metric, "steps": float(ev.steps),
                            "train-seconds": ev.wall_seconds, **(extra or {})}


def _zo_round(meta: VerifiedRecipe, examples: Examples, identity: Identity,
              weights_path: Path | None) -> tuple[bytes, dict[str, float]]:
    """Seed-trajectory mode: zeroth-order steps from the replayed shared model."""
    import hashlib

    # Seed draws differ per device and per meta-recipe, and repeat for the same pair.
    seed = int.from_bytes(hashlib.sha256(f"{identity.keyid}|{meta.digest}".encode())
                          .digest()[:8], "big") >> 1
    done = zo_train(meta.recipe, examples, seed=seed)
    return signed_reply(done.recipe, done.model, identity, weights_path)


#: Shared models this process already rebuilt (a device keeps ``w_r`` between rounds).
_CHAINS = None
#: Where missed meta-recipes are fetched from (the run config's ``registry``; None:
#: the default registry in ``$FEDSEED_HOME``, where the server publishes by default).
_REGISTRY: str | None = None


def use_registry(location: str | None) -> None:
    """Fetch missed meta-recipes of a projection chain from ``location``."""
    global _REGISTRY
    _REGISTRY = location or None


@dataclass(frozen=True)
class ChainSource:
    """Where a device fetches the meta-recipes of a projection chain it missed, and
    whom it trusts to have signed them (the ``server`` role)."""

    trust: TrustStore
    registry: Any  # a fedseed.registry.client.RegistryClient


def projected_shared_model(recipe: Any, chain: ChainSource | None = None) -> Any:
    """``w_r`` of a first-order projection meta-recipe: from this process's cache, else
    by replaying the chain of meta-recipes the server published (verified: each one
    must be signed by a key trusted for the ``server`` role)."""
    global _CHAINS
    if _CHAINS is None:
        _CHAINS = ChainCache()
    if chain is None:
        trust = load_trust()
        chain = ChainSource(trust, open_registry(_REGISTRY, trust))
    trust, registry = chain.trust, chain.registry

    def fetch(digest: str) -> Any:
        return verify_envelope(registry.fetch(digest), trust, role="server",
                               source=f"meta-recipe {digest}").recipe

    return shared_model(recipe, fetch, _CHAINS)


def _fo_round(meta: VerifiedRecipe, examples: Examples, identity: Identity,
              weights_path: Path | None, chain: ChainSource | None
              ) -> tuple[bytes, dict[str, float]]:
    """First-order seed projection: train from ``w_r``, upload the coefficients."""
    replayed = projected_shared_model(meta.recipe, chain)
    done = fo_train(meta.recipe, replayed.model, examples)
    return signed_reply(done.recipe, done.model, identity, weights_path, extra={
        "replayed-rounds": float(replayed.rounds),
        "fetched-bytes": float(replayed.fetched_bytes),
        "replay-seconds": round(replayed.seconds, 3)})


def final_round(meta: VerifiedRecipe, baseline: VerifiedRecipe, examples: Examples,
                weights_path: Path | None, *, chain: ChainSource | None = None,
                task: Mapping[str, Any] | None = None,
                policy: DevicePolicy | None = None) -> dict[str, float]:
    """Personalise from the final meta-recipe and from the round-0 recipe; test both
    (on this device's own ``task``, where it differs from the recipe's). A device with
    a privacy ``policy`` refuses: these test metrics are exact."""
    if policy is not None:
        raise VerificationError("this device's privacy policy (dp-require) refuses the "
                                "final evaluation: its test metrics would be sent exact",
                                reason="privacy-policy")
    start = None
    if meta.recipe.projection is not None:  # fine-tune from the replayed shared model
        start = projected_shared_model(meta.recipe, chain).model.state_dict()
    tuned = personalize_examples(meta.recipe, examples, method="personalize",
                                 initial_state=start, task=task)
    base = personalize_examples(baseline.recipe, examples, method="personalize", task=task)
    if weights_path is not None:
        _keep_weights(tuned.result.model, weights_path, tuned.recipe)
    t_ev, b_ev = tuned.recipe.evidence, base.recipe.evidence
    assert t_ev is not None and b_ev is not None
    shared = {}
    if meta.recipe.trajectory is not None or meta.recipe.projection is not None:
        shared = {"test-metric-shared": shared_test_metric(meta.recipe, examples, chain)}
    return {**shared, "test-metric-meta": t_ev.final.test_metric or 0.0,
            "test-metric-baseline": b_ev.final.test_metric or 0.0,
            "steps-meta": float(t_ev.steps), "steps-baseline": float(b_ev.steps),
            "num-examples": float(t_ev.num_examples.train)}


def shared_test_metric(recipe: Any, examples: Examples, chain: ChainSource | None = None
                       ) -> float:
    """The test metric of the model ``recipe`` assembles (for a trajectory recipe: the
    replayed shared model), without any training."""
    from fedseed.train.objectives import evaluate

    splits = split_examples(examples, recipe.split)
    part = splits.test if len(splits.test) else splits.validation
    model = (projected_shared_model(recipe, chain).model if recipe.projection is not None
             else assemble(recipe))
    _, metric = evaluate(model, to_tensors(part, recipe), recipe)
    return float(metric)


def weights_path_for(node_id: int, home: Path | None = None) -> Path:
    """Where a node keeps its personalised weights: on its own disk, never sent."""
    return (home or fedseed_home()) / "nodes" / str(node_id) / "model.safetensors"


def _keep_weights(model: Any, path: Path, recipe: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_weights(model, path, recipe)


__all__ = ["ChainSource", "Identity", "file_partitions", "final_round", "load_identity",
           "new_identity", "node_examples", "projected_shared_model", "train_round",
           "use_registry", "verify_meta", "weights_path_for"]
