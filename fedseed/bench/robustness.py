"""``fedseed bench robustness``: mutated inputs against every reader, verifier and
judge, and the HTTP registry fuzzed from its own OpenAPI document.

Part 1 draws mutated inputs with hypothesis (a generator here, not a test runner: a
fixed seed, no shrinking, no deadlines) in five kinds: signed envelopes as DSSE JSON
and packed, recipe JSON, client replies to a round in progress, and meta-recipes.
Each input goes to the consumers that read its kind (``read_envelope`` and
``verify_envelope``; ``parse_recipe``; ``judge_reply`` with a real
:class:`~fedseed.federation.server.ServerState`; ``verify_meta``), with real keys and
signatures (:mod:`._signed_world`), and the oracles of :mod:`._oracles` say whether
each acceptance or refusal was right (see :data:`ORACLES`). Targets: nothing
accepted that should not have been, no crash that is not a ``FedseedError``.

Part 2 (:mod:`._registry_fuzz`) runs schemathesis against a real ``fedseed registry
serve`` process on 127.0.0.1. Targets: no 5xx, no response outside the schema, no
blob stored by a refused request.
"""

from __future__ import annotations

import platform
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedseed.bench import _registry_fuzz
from fedseed.bench._robust_report import markdown, plot
from fedseed.bench._signed_world import build_world
from fedseed.bench.report import write_results
from fedseed.defaults import ROBUSTNESS_SEED
from fedseed.errors import FedseedError

#: The fixed hypothesis seed of a run (recorded in the results).
SEED = ROBUSTNESS_SEED

#: What "should have been refused" means, per consumer (also written to the report).
ORACLES = {
    "read_envelope": "accepted only if the input is a DSSE envelope as DSSE and RFC 8259 "
    "define it (UTF-8 JSON; base64 in the standard or URL-safe alphabet, padding "
    "optional, nothing else; at most 16 signatures, 1 MiB), with fedseed's rule that no "
    "JSON object repeats a member name, or a packed envelope as fedseed.provenance.packed "
    "documents it (minimal varint, one complete raw-deflate stream, header of known keys "
    "without repeated names, every blob used); and only if it returns the envelope so "
    "decoded (same payload bytes, type, key ids, signature bytes). Refusing what that "
    "independent decoder reads, or a re-encoding, is a wrong refusal.",
    "verify_envelope": "accepted only if the payload type is fedseed's, every key id it "
    "reports is a publisher key the trust store holds unrevoked, each such key really "
    "signed exactly these payload bytes (the ledger of every signature the benchmark made), "
    "the recipe returned is a faithful reading of those bytes (as for parse_recipe) and "
    "the digest is their SHA-256. A re-encoding that keeps the payload bytes and "
    "signatures (DSSE JSON whitespace, key order, escapes, the other base64 alphabet, a "
    "re-compressed packed header) must be accepted.",
    "parse_recipe": "accepted only if the input is UTF-8 JSON without NaN/Infinity or "
    "repeated member names, every member is a field of the recipe read with the same value "
    "(numbers compared by value, timestamps by instant; an absent optional top-level "
    "section may be written null; absent members take their defaults), and the recipe has "
    "canonical bytes that read back to itself. Whitespace, key order and escapes must be "
    "accepted.",
    "judge_reply": "accepted only if it is exactly a fresh honest reply: signed bytes the "
    "signer really signed, by the key the node presented (tofu: the node unbound or bound "
    "to that key, the key not revoked) or a key trusted as client (store); canonical JSON; "
    "the current meta-recipe its only parent; evidence present; the signer its producer; "
    "exactly the meta-recipe with the dealt assignment applied (search space, portfolio, "
    "evidence and lineage aside); and a digest neither accepted in an earlier round nor "
    "seen this round. Such a reply (that also parses and is canonical) must be accepted. "
    "The judge returns a verdict on any bytes: any exception it raises is a crash.",
    "verify_meta": "accepted only over payload bytes the unrevoked server key signed, with "
    "the payload type fedseed's and the recipe a faithful reading of them. A "
    "re-encoding that keeps the signed bytes must be accepted. (verify_meta knows no "
    "rounds: an older meta-recipe by the server key verifies; the judge's replay check "
    "is on the server side.)",
}


@dataclass
class Tally:
    """Counts for one (kind, consumer) pair, and the first examples of each failure."""

    kind: str
    consumer: str
    verdicts: Counter[str] = field(default_factory=Counter)
    families: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[dict[str, str]]] = field(default_factory=dict)

    def add(self, family: str, label: str, verdict: str, detail: str, data: bytes | str) -> None:
        """Count one outcome; keep up to five examples of every failing verdict."""
        import hashlib

        self.verdicts[verdict] += 1
        self.families[family] += 1
        if verdict in ("accepted", "refused"):
            return
        kept = self.examples.setdefault(verdict, [])
        if len(kept) < 5:
            raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")
            kept.append({"mutation": label[:300], "detail": detail,
                         "input_sha256": hashlib.sha256(raw).hexdigest(),
                         "input_head": repr(raw[:120])})

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        v = self.verdicts
        return {"kind": self.kind, "consumer": self.consumer, "tried": sum(v.values()),
                "accepted": v["accepted"], "wrongly_accepted": v["wrongly-accepted"],
                "refused_correctly": v["refused"], "wrongly_refused": v["wrongly-refused"],
                "crashed": v["crashed"], "families": dict(sorted(self.families.items())),
                "examples": self.examples}


def mutate(mutations: int, seed: int = SEED,
           on_case: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Draw ``mutations`` inputs (split evenly over the kinds) and probe each one."""
    import hypothesis
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis import seed as fixed_seed

    from fedseed.bench import _robust_cases as cases
    from fedseed.bench._robust_cases import KINDS, Case
    from fedseed.bench._robust_probes import PROBES
    from fedseed.bench._robust_replies import client_replies

    world = build_world()
    strategies = {"envelope-dsse": cases.dsse_envelopes, "envelope-packed":
                  cases.packed_envelopes, "recipe": cases.recipes,
                  "client-reply": client_replies, "meta-recipe": cases.meta_recipes}
    tallies = {(kind, name): Tally(kind, name) for kind in KINDS for name, _ in PROBES[kind]}
    drawn: Counter[str] = Counter()
    per_kind = max(1, mutations // len(KINDS))
    for kind in KINDS:

        @fixed_seed(seed)
        @settings(max_examples=per_kind, database=None, deadline=None,
                  phases=[Phase.generate], suppress_health_check=list(HealthCheck),
                  verbosity=Verbosity.quiet, derandomize=False, report_multiple_bugs=False)
        @given(strategies[kind](world))
        def probe(case: Case) -> None:
            drawn[case.kind] += 1
            for name, function in PROBES[case.kind]:
                outcome = function(case, world)
                tallies[(case.kind, name)].add(case.family, case.label, outcome.verdict,
                                               outcome.detail, case.data)
            if on_case:
                on_case(case.kind)

        probe()
    rows = [t.as_dict() for t in tallies.values()]
    controls = sum(t.families.get("control", 0) for t in tallies.values()
                   if t.consumer != "verify_envelope")
    return {"seed": seed, "hypothesis": hypothesis.__version__, "inputs": sum(drawn.values()),
            "inputs_by_kind": dict(drawn), "unmutated_controls": controls,
            "mutated": sum(drawn.values()) - controls, "probes": rows,
            "wrongly_accepted": sum(r["wrongly_accepted"] for r in rows),
            "crashed": sum(r["crashed"] for r in rows),
            "wrongly_refused": sum(r["wrongly_refused"] for r in rows)}


def run(out_dir: Path, mutations: int = 12_000, http_cases: int = 1_200, seed: int = SEED,
        on_case: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Both parts; write ``robustness.{json,md,png}`` under ``out_dir``."""
    import tempfile

    try:
        import hypothesis  # noqa: F401
        import schemathesis  # noqa: F401
    except ImportError as e:
        raise FedseedError("fedseed bench robustness needs hypothesis and schemathesis "
                           "(the dev extra): pip install -e '.[dev]'") from e
    started = time.perf_counter()
    fuzz = mutate(mutations, seed, on_case)
    fuzz["seconds"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fedseed-robustness-") as tmp:
        http = _registry_fuzz.fuzz(Path(tmp), http_cases, seed,
                                   on_case=(lambda: on_case("http")) if on_case else None)
    http["seconds"] = round(time.perf_counter() - started, 1)
    payload: dict[str, Any] = {
        "benchmark": "robustness", "seed": seed, "oracles": ORACLES, "mutations": fuzz,
        "http": http, "targets": {"wrongly_accepted": 0, "crashed": 0, "server_errors": 0,
                                  "schema_violations": 0, "stored_by_refused": 0},
        "machine": {"python": platform.python_version(), "cpu": platform.processor()
                    or platform.machine(), "cores": _cores()},
    }
    written = write_results(out_dir, "robustness", payload, markdown(payload))
    written.append(plot(out_dir / "robustness.png", payload))
    payload["written"] = [str(p) for p in written]
    return payload


def _cores() -> int | None:
    import os

    return os.cpu_count()
