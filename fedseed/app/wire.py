"""Building and reading fedseed's Flower messages; counting what crosses the wire."""

from __future__ import annotations

from typing import Any

from flwr.app import ConfigRecord, Message, RecordDict

from fedseed.federation import protocol
from fedseed.federation.strategy import payload_size


def instruction(dst: int, message_type: str, round_: int, values: dict[str, Any]) -> Message:
    """A message to node ``dst``: one ConfigRecord of recipe bytes and scalars."""
    content = RecordDict({protocol.RECORD: ConfigRecord({**values, protocol.ROUND: round_})})
    return Message(content, dst_node_id=dst, message_type=message_type, group_id=str(round_))


def array_records(message: Message) -> int:
    """How many ArrayRecords a message holds (fedseed's are always 0)."""
    return len(message.content.array_records) if message.has_content() else 0


def payload_bytes(message: Message) -> int:
    """Bytes of record content a message carries (bytes and text fields, 8 per number)."""
    if not message.has_content():
        return 0
    content = message.content
    return sum(payload_size(dict(r)) for r in
               [*content.config_records.values(), *content.metric_records.values()])


def record(message: Message) -> ConfigRecord:
    """The fedseed ConfigRecord of a message (empty if absent)."""
    return message.content.config_records.get(protocol.RECORD, ConfigRecord())


def bytes_field(values: ConfigRecord, key: str) -> bytes:
    """A bytes field of a ConfigRecord; empty when absent or of another type (the
    receiver then rejects the message as malformed rather than crashing)."""
    value = values.get(key, b"")
    return bytes(value) if isinstance(value, bytes) else b""


def metric_record(metrics: dict[str, float]) -> Any:
    """A MetricRecord of plain floats."""
    from flwr.app import MetricRecord

    return MetricRecord(dict(metrics))
