"""What travels in a round, and nothing else: recipe bytes and a few numbers.

Instruction (server -> client), one ``ConfigRecord`` named ``fedseed``:
``meta`` (bytes: the signed meta-recipe envelope, packed), ``assignment`` (JSON text: the
configuration this client explores), ``round`` (int), and for the final
personalization also ``baseline`` (bytes: the signed round-0 recipe, packed).

Reply (client -> server), one ``ConfigRecord`` named ``fedseed``: ``recipe`` (bytes:
the signed client recipe envelope, packed) and ``pubkey`` (bytes: the client's public key
PEM, used for trust-on-first-use), plus a ``MetricRecord`` named ``metrics``.
No message ever holds an ``ArrayRecord``: weights stay on the devices.

"Packed" is :mod:`fedseed.provenance.packed`: the DSSE envelope with its base64
numbers and digests as raw bytes, the rest compressed; it unpacks to the exact
signed bytes, so signatures are checked as on any envelope. Receivers also accept
plain DSSE JSON.
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
