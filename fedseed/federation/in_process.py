"""Nodes as plain Python calls: a :class:`~fedseed.federation.strategy.Transport` that
answers each instruction with the real client logic (:mod:`fedseed.federation.client`:
verify the meta-recipe against the node's trust store, train on its in-memory
examples, sign the client recipe) in this process, without Flower.

For notebooks, tests and quick experiments: the same judge, aggregators, signatures
and lineage as a Flower run, one node after the other. Replies are real signed
envelopes, and the strategy judges them exactly as it judges a SuperNode's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fedseed.data.examples import Examples
from fedseed.errors import FedseedError
from fedseed.federation import protocol
from fedseed.federation.client import (
    ChainSource,
    Identity,
    final_round,
    new_identity,
    train_round,
    verify_meta,
)
from fedseed.federation.strategy import (
    Delivery,
    Instruction,
    NodeReply,
    RoundSettings,
    payload_size,
)
from fedseed.privacy.device import DevicePolicy, Ledger
from fedseed.provenance.trust import TrustStore
from fedseed.registry.client import RegistryClient


class InProcessTransport:
    """Node ``i`` holds ``examples[i]`` and a signing key of its own.

    ``trust`` is what every node trusts (it must hold the server's key for the
    ``server`` role); ``registry`` is where first-order nodes fetch meta-recipes
    they missed (the strategy's registry). ``policy``: every node's own privacy
    policy, checked against its ledger under ``ledgers`` (fedseed.privacy.device).
    """

    def __init__(self, examples: Sequence[Examples], trust: TrustStore, *,
                 registry: RegistryClient | None = None,
                 identities: Sequence[Identity] | None = None,
                 policy: DevicePolicy | None = None, ledgers: Path | None = None) -> None:
        if not examples:
            raise FedseedError("in-process federation: give at least one node's examples")
        self.examples = list(examples)
        self.trust = trust
        self.chain = ChainSource(trust, registry) if registry is not None else None
        if policy is not None and ledgers is None:
            raise FedseedError("in-process federation: a device privacy policy needs a "
                               "folder for the nodes' ledgers (ledgers=...)")
        self.policy, self.ledgers = policy, ledgers
        self.identities = list(identities) if identities is not None else [
            new_identity() for _ in self.examples]
        if len(self.identities) != len(self.examples):
            raise FedseedError(f"in-process federation: {len(self.identities)} identities "
                               f"for {len(self.examples)} nodes")

    def node_ids(self, minimum: int, timeout: float) -> list[int]:
        return list(range(len(self.examples)))

    def exchange(self, instructions: Sequence[Instruction], settings: RoundSettings
                 ) -> Delivery:
        replies = [self.answer(i) for i in instructions]
        return Delivery(replies, bytes_down=sum(payload_size(i.values) for i in instructions))

    def answer(self, instruction: Instruction) -> NodeReply:
        """One node's reply to ``instruction``, or its refusal as an error."""
        node, values = instruction.node, instruction.values
        try:
            meta = verify_meta(_bytes(values.get(protocol.META)), self.trust)
            examples = self.examples[node]
            if instruction.kind == protocol.EVALUATE:
                baseline = verify_meta(_bytes(values.get(protocol.BASELINE)), self.trust)
                return NodeReply(node, metrics=final_round(meta, baseline, examples, None,
                                                           chain=self.chain,
                                                           policy=self.policy))
            identity = self.identities[node]
            ledger = None if self.ledgers is None else Ledger(self.ledgers / f"node-{node}.json")
            envelope, metrics = train_round(meta, str(values.get(protocol.ASSIGNMENT, "")),
                                            examples, identity, None, chain=self.chain,
                                            policy=self.policy, ledger=ledger)
        except FedseedError as e:
            return NodeReply(node, error=e.diagnostics())
        return NodeReply(node, values={protocol.RECIPE: envelope,
                                       protocol.PUBKEY: identity.pubkey_pem},
                         metrics=metrics)


def _bytes(value: object) -> bytes:
    return bytes(value) if isinstance(value, bytes) else b""


__all__ = ["InProcessTransport"]
