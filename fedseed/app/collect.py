"""Collecting a round's replies: wait for every sampled node, or close the round a
grace period after a quorum of them answered, with ``timeout`` as the hang guard.

Flower's ``Grid.send_and_receive`` only knows one deadline, counted from the moment
the messages are sent, so on a slow or cold machine a healthy node can miss it and be
counted as silent. Here the deadline that drops stragglers starts only once
``quorum`` replies are in: how fast the machine is decides when a round ends, never
which healthy node is counted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from flwr.app import Message
from flwr.serverapp import Grid

#: Seconds between two polls of the SuperLink for replies.
POLL_SECONDS = 0.2


def quorum_count(sampled: int, quorum: float) -> int:
    """Replies that start the grace period: ``ceil(quorum * sampled)``, at least 1."""
    return max(1, min(sampled, math.ceil(quorum * sampled - 1e-9)))


def collect(grid: Grid, messages: Sequence[Message], *, timeout: float, quorum: float = 1.0,
            grace: float = 0.0) -> list[Message]:
    """Send ``messages`` and return the replies that arrived before the round closed.

    Parameters
    ----------
    grid
        The Flower grid of the run.
    messages
        One instruction per sampled node.
    timeout
        Seconds after sending at which the round closes whatever has arrived: a guard
        against a federation that hangs, not a speed limit.
    quorum
        Share of the sampled nodes whose replies start the grace period (1.0: wait
        for every node, up to ``timeout``).
    grace
        Seconds to wait for stragglers once the quorum is in.
    """
    if not messages:
        return []
    pending = set(grid.push_messages(messages))
    need = quorum_count(len(pending), quorum)
    hard_stop = time.monotonic() + timeout
    close_at = hard_stop
    replies: list[Message] = []
    while pending:
        arrived = list(grid.pull_messages(pending))
        replies.extend(arrived)
        pending.difference_update(m.metadata.reply_to_message_id for m in arrived)
        now = time.monotonic()
        if len(replies) >= need and close_at == hard_stop:
            close_at = min(hard_stop, now + grace)
        if not pending or now >= close_at:
            break
        time.sleep(POLL_SECONDS)
    return replies
