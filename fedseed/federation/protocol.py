"""What travels in a round, and nothing else: recipe bytes and a few numbers.

Instruction (server -> client), one ``ConfigRecord`` named ``fedseed``:
``meta`` (bytes: the signed meta-recipe envelope), ``assignment`` (JSON text: the
configuration this client explores), ``round`` (int), and for the final
personalization also ``baseline`` (bytes: the signed round-0 recipe).

Reply (client -> server), one ``ConfigRecord`` named ``fedseed``: ``recipe`` (bytes:
the signed client recipe envelope) and ``pubkey`` (bytes: the client's public key
PEM, used for trust-on-first-use), plus a ``MetricRecord`` named ``metrics``.
No message ever holds an ``ArrayRecord``: weights stay on the devices.
"""

from __future__ import annotations

RECORD = "fedseed"
METRICS = "metrics"
META = "meta"
BASELINE = "baseline"
ASSIGNMENT = "assignment"
ROUND = "round"
RECIPE = "recipe"
PUBKEY = "pubkey"

#: Flower message types used: ``train`` explores and reports; ``evaluate`` is the
#: final personalization from the last meta-recipe (and the round-0 baseline).
TRAIN = "train"
EVALUATE = "evaluate"
