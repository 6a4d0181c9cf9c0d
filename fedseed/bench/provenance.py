"""Provenance throughput: envelope verifications per second on one core, and
publishes per second to the embedded registry.

A verification is the whole path a receiver runs: parse the envelope JSON, decode
base64, check the Ed25519 signature over the DSSE PAE, and parse and validate the
recipe from the signed bytes. A publish is what ``fedseed recipe publish`` does after
signing: verify, write the blob (temporary file, fsync, rename) and index it in
SQLite (WAL, synchronous=FULL).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fedseed.bench.report import machine, save_figure, write_results
from fedseed.provenance.envelope import Envelope
from fedseed.provenance.keys import key_id, public_pem
from fedseed.provenance.sign import sign_recipe
from fedseed.provenance.trust import TrustStore
from fedseed.provenance.verify import verify_envelope
from fedseed.recipe import load_builtin
from fedseed.registry.service import accept_envelope
from fedseed.registry.store import LocalRegistry


def _signed(count: int) -> tuple[list[bytes], Any]:
    """``count`` envelopes of distinct recipes signed by one trusted publisher key."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    kid = key_id(key.public_key())
    trust, _ = TrustStore().add(public_pem(key.public_key()), "publisher", "bench")
    base = load_builtin("digits-mlp")
    envelopes = []
    for seed in range(count):
        recipe = base.model_copy(update={"init": base.init.model_copy(update={"seed": seed})})
        envelopes.append(sign_recipe(recipe, key, kid).to_json())
    return envelopes, trust


def measure_verify(seconds: float = 3.0) -> dict[str, Any]:
    """Verifications per second, pinned to one core where the OS allows it."""
    envelopes, trust = _signed(256)
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if affinity:
        os.sched_setaffinity(0, {min(affinity)})
    try:
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            for raw in envelopes:
                verify_envelope(Envelope.from_json(raw), trust, role="publisher")
            done += len(envelopes)
        elapsed = time.perf_counter() - start
    finally:
        if affinity:
            os.sched_setaffinity(0, affinity)
    return {"verifications": done, "seconds": round(elapsed, 3),
            "per_second": round(done / elapsed, 1), "envelope_bytes": len(envelopes[0]),
            "one_core": bool(affinity)}


def measure_publish(count: int = 500) -> dict[str, Any]:
    """Publishes per second of ``count`` distinct recipes into a fresh embedded registry."""
    envelopes, trust = _signed(count)
    with tempfile.TemporaryDirectory() as tmp:
        registry = LocalRegistry(Path(tmp) / "registry")
        start = time.perf_counter()
        for raw in envelopes:
            accept_envelope(registry, Envelope.from_json(raw), trust)
        elapsed = time.perf_counter() - start
        stored = len(registry.entries())
    return {"publishes": count, "stored": stored, "seconds": round(elapsed, 3),
            "per_second": round(count / elapsed, 1)}


def run(out_dir: Path, seconds: float = 3.0, count: int = 500,
        on_step: Callable[[], None] | None = None) -> dict[str, Any]:
    """Measure both, write ``provenance.{json,md,png}`` under ``out_dir``."""
    verify = measure_verify(seconds)
    if on_step:
        on_step()
    publish = measure_publish(count)
    if on_step:
        on_step()
    info = machine()
    payload: dict[str, Any] = {"benchmark": "provenance", "machine": info, "verify": verify,
               "publish": publish, "targets": {"verify_per_second": 5000,
                                               "publish_per_second": 300}}
    md = "\n".join([
        "# Provenance throughput", "",
        "`fedseed bench provenance` (part of `make bench`).", "",
        "| measure | result | target | ratio to target |", "|---|---:|---:|---:|",
        f"| envelope verifications / s (one core; JSON + base64 + Ed25519 + recipe "
        f"validation) | {verify['per_second']:,.0f} | 5,000 | "
        f"{verify['per_second'] / 5000:.2f} |",
        f"| publishes / s to the embedded registry (verify + fsync'd blob + SQLite "
        f"index) | {publish['per_second']:,.0f} | 300 | {publish['per_second'] / 300:.2f} |",
        "", f"Envelope size: {verify['envelope_bytes']:,} bytes (digits-mlp). "
        f"{publish['stored']} of {publish['publishes']} publishes indexed.",
        f"Machine: {info['cores']} cores, Python {info['python']}."
        " Absolute rates depend on the machine and its disk (fsync).", ""])
    written = write_results(out_dir, "provenance", payload, md)
    written.append(_plot(out_dir / "provenance.png", verify, publish))
    payload["written"] = [str(p) for p in written]
    return payload


def _plot(path: Path, verify: dict[str, Any], publish: dict[str, Any]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    labels = ["verify / 5,000 per s", "publish / 300 per s"]
    ratios = [verify["per_second"] / 5000, publish["per_second"] / 300]
    ax.barh(labels, ratios, color=["#4c72b0", "#55a868"])
    ax.axvline(1.0, color="#c44e52", linestyle="--", label="target")
    ax.set_xlabel("measured rate / target rate")
    ax.set_title("provenance throughput")
    ax.legend()
    return save_figure(fig, path)
