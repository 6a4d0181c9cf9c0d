"""``fedseed bench bandwidth``: time versus bandwidth. Is fetching a recipe and
training locally faster than downloading trained weights, and below which link speed?

Per built-in recipe, on its embedded default data:

- **fedseed**: fetch the signed recipe from a real local registry and verify it
  (measured), plus its bytes over the link; then train locally as the recipe says,
  until the validation metric first reaches 95% of what the full budget reaches
  (measured seconds on this CPU, from the per-step progress callback).
- **weights**: the trained weights as float32 safetensors (their real size), over
  the link.

The crossover is the link speed at which the two take the same time: below it,
fedseed is faster. Link time is bytes × 8 / bandwidth; latency and protocol overhead
are left out of both (they would favour fedseed, which moves fewer bytes).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

COMMAND = "fedseed bench bandwidth"
RECIPES = ("digits-mlp", "image-cnn-small", "text-ngram", "text-bert-tiny", "charlm-gpt2-tiny")
BANDWIDTHS_MBIT = (0.1, 0.5, 1.0, 10.0, 100.0)
#: "Fine-tuned to 95% of the full-budget result".
TARGET_SHARE = 0.95
Event = Callable[[str], None]


def link_seconds(n_bytes: float, mbit_per_s: float) -> float:
    """Seconds to move ``n_bytes`` over a ``mbit_per_s`` link (no latency)."""
    return n_bytes * 8 / (mbit_per_s * 1e6)


def crossover_mbit(weights_bytes: float, recipe_bytes: float, local_seconds: float
                   ) -> float | None:
    """The bandwidth at which downloading the weights takes as long as fetching the
    recipe and training (``local_seconds``); below it fedseed is faster. ``None``
    when the recipe is not smaller than the weights (fedseed never wins)."""
    if weights_bytes <= recipe_bytes or local_seconds <= 0:
        return None
    return (weights_bytes - recipe_bytes) * 8 / (local_seconds * 1e6)


def time_to_share(curve: Sequence[tuple[int, float]], seconds_at: dict[int, float],
                  final: float, higher: bool, share: float = TARGET_SHARE
                  ) -> tuple[int, float] | None:
    """The first evaluated (step, seconds) whose validation metric reaches ``share`` of
    ``final`` (``final / share`` for a lower-is-better metric)."""
    target = share * final if higher else final / share
    for step, value in curve:
        if (value >= target) if higher else (value <= target):
            return step, seconds_at[step]
    return None


def default_data(recipe: Any) -> str:
    """The embedded data set a recipe's demo runs on."""
    return "digits" if recipe.task.modality in ("tabular", "image") else "toy-text"


def weights_bytes(model: Any) -> int:
    """The model's weights as a float32 safetensors file, in bytes; a tied tensor (the
    char-LM's output layer is its embedding) is stored once."""
    from safetensors.torch import save

    from fedseed.bench.seed_compress import unique_tensors

    return len(save(unique_tensors(model.state_dict())))



def fetch_and_verify(recipe: Any, repeats: int = 20) -> dict[str, Any]:
    """Sign ``recipe``, publish it to a fresh local registry, then time fetching and
    verifying it as a device does (median of ``repeats``)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from fedseed.provenance.keys import key_id, public_pem
    from fedseed.provenance.packed import pack
    from fedseed.provenance.sign import sign_recipe
    from fedseed.provenance.trust import TrustStore
    from fedseed.provenance.verify import verify_envelope
    from fedseed.recipe.codec import recipe_digest
    from fedseed.registry.client import LocalClient

    key = Ed25519PrivateKey.generate()
    trust, _ = TrustStore().add(public_pem(key.public_key()), "publisher", "bench")
    envelope = sign_recipe(recipe, key, key_id(key.public_key()))
    with tempfile.TemporaryDirectory(prefix="fedseed-bandwidth-") as root:
        client = LocalClient(Path(root), trust)
        client.publish(envelope)
        digest = recipe_digest(recipe)
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            verified = verify_envelope(client.fetch(digest), trust, role="publisher")
            times.append(time.perf_counter() - started)
        assert recipe_digest(verified.recipe) == digest
    return {"bytes": len(pack(envelope)), "seconds": statistics.median(times)}


def measure(name: str) -> dict[str, Any]:
    """One recipe: its signed size, fetch + verify time, local training to 95% of the
    full budget's validation metric, and its trained weights' size."""
    from fedseed.data.builtin import load_builtin_dataset
    from fedseed.personalize import personalize_examples
    from fedseed.recipe.builtin import resolve_recipe
    from fedseed.train.loop import Progress

    recipe = resolve_recipe(name)
    fetched = fetch_and_verify(recipe)
    examples = load_builtin_dataset(default_data(recipe))
    seconds_at: dict[int, float] = {}
    started = time.perf_counter()

    def progress(p: Progress) -> None:
        seconds_at[p.step] = time.perf_counter() - started

    done = personalize_examples(recipe, examples, progress=progress)
    total = time.perf_counter() - started
    ev = done.recipe.evidence
    assert ev is not None
    higher = recipe.task.higher_is_better
    curve = [(p.step, p.val_metric) for p in ev.curve]
    final = ev.final.val_metric
    reached = time_to_share(curve, seconds_at, final, higher)
    step, seconds = reached if reached is not None else (ev.steps, total)
    weights = weights_bytes(done.result.model)
    local = fetched["seconds"] + seconds
    return {
        "recipe": name, "data": default_data(recipe), "metric": recipe.task.metric,
        "higher_is_better": higher, "final_val": final, "steps_full": ev.steps,
        "seconds_full": round(total, 3), "steps_to_target": step,
        "seconds_to_target": seconds, "recipe_bytes": fetched["bytes"],
        "verify_seconds": fetched["seconds"], "weights_bytes": weights,
        "ratio_bytes": weights / fetched["bytes"],
        "crossover_mbit": crossover_mbit(weights, fetched["bytes"], local),
        "by_bandwidth": [{"mbit": b,
                          "fedseed_seconds": link_seconds(fetched["bytes"], b) + local,
                          "weights_seconds": link_seconds(weights, b)}
                         for b in BANDWIDTHS_MBIT],
    }


def run(out: Path, on_event: Event, recipes: Sequence[str] = RECIPES) -> dict[str, Any]:
    """Measure every recipe; write ``bandwidth.{json,md,png}`` under ``out``."""
    from fedseed.bench.bandwidth_report import figure, markdown
    from fedseed.bench.report import machine, write_results
    from fedseed.recipe.builtin import resolve_recipe

    for name in recipes:  # an unknown name fails now, not after the others ran
        resolve_recipe(name)
    started = time.perf_counter()
    rows = []
    for name in recipes:
        on_event(f"{name}: fetch, verify, train to {TARGET_SHARE:.0%} of the full budget")
        rows.append(measure(name))
    payload = {"machine": machine(), "bandwidths_mbit": list(BANDWIDTHS_MBIT),
               "target_share": TARGET_SHARE, "recipes": rows,
               "seconds": round(time.perf_counter() - started, 1)}
    written = write_results(out, "bandwidth", payload, markdown(payload))
    written.append(figure(payload, out / "bandwidth.png"))
    payload["written"] = [str(p) for p in written]
    return payload


__all__ = ["BANDWIDTHS_MBIT", "RECIPES", "crossover_mbit", "link_seconds", "measure", "run",
           "time_to_share"]
