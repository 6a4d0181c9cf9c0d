"""Flower's Grid as a :class:`~fedseed.federation.strategy.Transport`: instructions
become Messages of one ConfigRecord, replies come back through
:func:`fedseed.app.collect.collect` (the round deadline starts once a quorum replied),
and every ArrayRecord in either direction is counted."""

from __future__ import annotations

from collections.abc import Sequence

from flwr.app import Message
from flwr.serverapp import Grid

from fedseed.app.collect import collect
from fedseed.app.wire import array_records, instruction, payload_bytes, record
from fedseed.federation import protocol
from fedseed.federation.strategy import (
    Delivery,
    Instruction,
    NodeReply,
    RoundSettings,
    wait_for_nodes,
)


class GridTransport:
    """Moves a strategy's instructions over a Flower ``Grid``."""

    def __init__(self, grid: Grid) -> None:
        self.grid = grid

    def node_ids(self, minimum: int, timeout: float) -> list[int]:
        return wait_for_nodes(lambda: list(self.grid.get_node_ids()), minimum, timeout)

    def exchange(self, instructions: Sequence[Instruction], settings: RoundSettings
                 ) -> Delivery:
        messages = [instruction(i.node, i.kind, i.round, dict(i.values))
                    for i in instructions]
        replies = collect(self.grid, messages, timeout=settings.timeout,
                          quorum=settings.quorum, grace=settings.grace)
        return Delivery([node_reply(m) for m in replies],
                        bytes_down=sum(payload_bytes(m) for m in messages),
                        arrays_sent=sum(array_records(m) for m in messages))


def node_reply(message: Message) -> NodeReply:
    """A Flower reply as the strategy reads it."""
    node = message.metadata.src_node_id
    if message.has_error():
        return NodeReply(node, error=message.error.reason or f"code {message.error.code}")
    metrics = message.content.metric_records.get(protocol.METRICS, {})
    return NodeReply(node, values=dict(record(message)),
                     metrics={k: float(v) for k, v in metrics.items()
                              if isinstance(v, (int, float))},
                     arrays=array_records(message))


__all__ = ["GridTransport", "node_reply"]
