"""``fedseed bench trajectory``: what seed trajectories cost.

- Replay time: rebuilding ``w0 - sum_k c_k z_k`` for digits-mlp and text-bert-tiny at
  K = 1,024 and 4,096 (every coefficient nonzero: the worst case), median of runs.
- Bit-exact replay: the same recipe replayed in two fresh processes gives the same
  state-dict digest.
- Client memory: peak RSS of a zeroth-order client step (forward passes only) against
  first-order personalization of the same model on the same data, each in its own
  process, also reported above the process's RSS once the model is assembled (the
  imports and the model are common to both).
- Meta-recipe size against K, for a small and a large model: canonical JSON, DSSE
  JSON, and packed (what the apps send).
- Communication over a run for text-bert-tiny: real Flower federations on the same
  toy-text users, Flower's FedAvg and seed-trajectory mode for the same rounds, bytes
  counted on every message, and the resulting models scored on every user's test split.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fedseed.assemble import assemble, parameter_count, state_dict_digest
from fedseed.bench.fedavg import run_fedavg
from fedseed.bench.fedseed_run import run_fedseed
from fedseed.bench.jobs import Job, run_job
from fedseed.bench.report import machine, save_figure, write_results
from fedseed.data.builtin import load_builtin_dataset
from fedseed.data.partition import partition
from fedseed.federation.config import FederationConfig
from fedseed.meta import Options, TrajectoryAggregator
from fedseed.personalize import personalize_examples
from fedseed.provenance.keys import key_id
from fedseed.provenance.packed import pack
from fedseed.provenance.sign import sign_recipe
from fedseed.recipe.builtin import resolve_recipe
from fedseed.recipe.codec import canonical_bytes, parse_recipe
from fedseed.recipe.evidence import Lineage
from fedseed.recipe.trajectory import encode_floats
from fedseed.trajectory.replay import apply_trajectory
from fedseed.trajectory.zo import zo_train

CASES = [("digits-mlp", 1024), ("digits-mlp", 4096), ("text-bert-tiny", 1024),
         ("text-bert-tiny", 4096)]


@dataclass(frozen=True)
class RunSettings:
    """The communication run: ``clients`` toy-text users (IID), ``rounds`` rounds of
    each method; the trajectory's pool and zeroth-order step; FedAvg's local steps."""

    recipe: str = "text-bert-tiny"
    clients: int = 4
    rounds: int = 3
    pool_size: int = 512
    zo_steps: int = 25
    seeds_per_step: int = 4
    zo_lr: float = 0.01
    fedavg_local_steps: int = 20


def trajectory_recipe(name: str, pool: int, seed: int = 0) -> Any:
    """``name`` with a pool of ``pool`` seeds, every coefficient nonzero."""
    import numpy as np

    meta = TrajectoryAggregator(Options(), pool_size=pool).prepare(resolve_recipe(name))
    values = (np.random.default_rng(seed).standard_normal(pool) * 1e-4).astype(np.float32)
    assert meta.trajectory is not None
    return meta.model_copy(update={"trajectory": meta.trajectory.model_copy(
        update={"coefficients": encode_floats(values)})})


def wire_sizes(recipe: Any, parents: int = 20) -> dict[str, int]:
    """Bytes of a meta-recipe as the server seals it (``parents`` client digests, one
    signature): canonical JSON, DSSE JSON, and packed, as the apps send it."""
    import hashlib
    from datetime import UTC, datetime

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    lineage = Lineage(parents=sorted("sha256:" + hashlib.sha256(bytes([i])).hexdigest()
                                     for i in range(parents)),
                      round=10, method="trajectory", producer=key_id(key.public_key()),
                      created=datetime.now(UTC).replace(microsecond=0))
    sealed = recipe.model_copy(update={"lineage": lineage})
    envelope = sign_recipe(sealed, key)
    return {"meta_recipe_bytes": len(canonical_bytes(sealed)),
            "dsse_json_bytes": len(envelope.to_json()), "packed_bytes": len(pack(envelope))}


def replay_seconds(recipe: Any, repeats: int) -> float:
    """Median wall time of replaying ``recipe`` onto its assembled ``w0``."""
    import torch

    torch.set_num_threads(1)
    times = []
    base = recipe.model_copy(update={"trajectory": None})
    for _ in range(repeats):
        model = assemble(base)
        started = time.perf_counter()
        apply_trajectory(model, recipe.trajectory)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _child(kind: str, recipe_path: str) -> None:
    """One measurement in a fresh process; prints JSON."""
    import resource

    import psutil
    import torch

    torch.set_num_threads(1)
    recipe = parse_recipe(Path(recipe_path).read_bytes())
    if kind == "digest":
        print(json.dumps({"digest": state_dict_digest(assemble(recipe))}))
        return

    data = "toy-text" if recipe.task.modality == "text" else "digits"
    examples = load_builtin_dataset(data).take(list(range(200)))
    assemble(recipe)  # imports and one model: what both kinds need anyway
    base = psutil.Process().memory_info().rss
    if kind == "zo":
        zo_train(recipe, examples, seed=0)
    else:
        personalize_examples(recipe.model_copy(update={"trajectory": None}), examples,
                             assignment={"budget.max_steps": 20, "budget.eval_every": 10,
                                         "schedule.warmup_steps": 0})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"peak_mib": peak / 2**20, "above_model_mib": (peak - base) / 2**20}))


def _in_child(kind: str, recipe_path: Path) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "fedseed.bench.trajectory", kind,
                           str(recipe_path)], capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"trajectory bench child '{kind}' failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def communication_run(settings: RunSettings, work: Path) -> dict[str, Any]:
    """FedAvg and seed-trajectory federations of ``settings`` on the same users: bytes
    per client over the run (every message counted) and mean test accuracy."""
    import statistics

    recipe = resolve_recipe(settings.recipe)
    data = "toy-text" if recipe.task.modality == "text" else "digits"
    users = partition(load_builtin_dataset(data), settings.clients, partitioner="iid", seed=0)

    def mean_test(candidate: Any, state: Any = None) -> float:
        blob = canonical_bytes(candidate)
        return statistics.fmean(run_job(Job(blob, u, initial_state=state, train=False)).test
                                for u in users)

    fedavg = run_fedavg(recipe, users, rounds=settings.rounds,
                        local_steps=settings.fedavg_local_steps, seed=0)
    cfg = FederationConfig(
        num_rounds=settings.rounds, fraction=1.0, min_nodes=len(users), min_replies=1,
        recipe=settings.recipe, mode="trajectory", pool_size=settings.pool_size,
        zo_steps=settings.zo_steps, seeds_per_step=settings.seeds_per_step,
        zo_lr=settings.zo_lr, client_trust="tofu", auto_keys=True,
        registry=str(work / "registry"), final_personalization=False)
    seeds = run_fedseed(cfg, users, work)
    rows: dict[str, Any] = {
        "fedavg": {"bytes_per_client": fedavg.bytes_down_per_client
                   + fedavg.bytes_up_per_client,
                   "accuracy": mean_test(recipe, fedavg.state_dict)},
        "trajectory": {"bytes_per_client": seeds.bytes_down_per_client
                       + seeds.bytes_up_per_client,
                       "bytes_down_per_client": seeds.bytes_down_per_client,
                       "bytes_up_per_client": seeds.bytes_up_per_client,
                       "accuracy": mean_test(seeds.meta)},
        "round0_accuracy": mean_test(recipe),
    }
    rows["ratio"] = rows["fedavg"]["bytes_per_client"] / rows["trajectory"]["bytes_per_client"]
    return {"settings": asdict(settings), "data": data, **rows}


def run(out: Path, repeats: int = 3, on_step: Callable[[str], None] | None = None,
        cases: list[tuple[str, int]] | None = None, memory_recipe: str = "text-bert-tiny",
        communication: RunSettings | None = RunSettings()) -> dict[str, Any]:
    """Measure, write ``trajectory.{json,md,png}`` under ``out``."""
    import tempfile

    step = on_step or (lambda text: None)
    replay = []
    for name, pool in cases or CASES:
        step(f"replay {name} K={pool}")
        recipe = trajectory_recipe(name, pool)
        replay.append({"recipe": name, "pool_size": pool, "parameters": parameter_count(recipe),
                       "seconds": replay_seconds(recipe, repeats), **wire_sizes(recipe)})
    with tempfile.TemporaryDirectory() as tmp:
        small = Path(tmp) / "digits.json"
        small.write_bytes(canonical_bytes(trajectory_recipe("digits-mlp", 1024)))
        step("bit-exact replay in two processes")
        digests = [_in_child("digest", small)["digest"] for _ in range(2)]
        text = Path(tmp) / "text.json"

        zo_recipe = TrajectoryAggregator(Options(), pool_size=1024, steps=20,
                                         seeds_per_step=1).prepare(
            resolve_recipe(memory_recipe))
        text.write_bytes(canonical_bytes(zo_recipe))
        step(f"client memory: zeroth-order vs first-order ({memory_recipe})")
        memory = {"recipe": memory_recipe, "zeroth_order": _in_child("zo", text),
                  "first_order": _in_child("fo", text)}
        comm = None
        if communication is not None:
            step(f"communication over a run: {communication.recipe}, FedAvg and trajectory")
            comm = communication_run(communication, Path(tmp) / "run")
    payload: dict[str, Any] = {
        "machine": machine(), "replay": replay,
        "bit_exact": {"digests": digests, "identical": digests[0] == digests[1]},
        "memory": memory, "communication": comm}
    md = markdown(payload)
    written = write_results(out, "trajectory", payload, md)
    written.append(figure(payload, out))
    payload["written"] = [str(p) for p in written]
    return payload


def markdown(payload: dict[str, Any]) -> str:
    """docs/results/trajectory.md."""
    m = payload["machine"]
    lines = ["# Seed trajectories: replay and client cost", "",
             f"Written by `fedseed bench trajectory` on {m['cores']} cores ({m['cpu']}), "
             f"torch {m['torch']}, one torch thread.", "",
             "## Replay and meta-recipe size (every coefficient nonzero)", "",
             "Meta-recipes as the server seals them: 20 parent digests, one signature. "
             "*Packed* is what the apps send (docs/provenance.md, the packed form); the "
             "issue's limit is 18 KB.", "",
             "| recipe | parameters | K | replay seconds | canonical JSON | DSSE JSON | "
             "packed (on the wire) | ≤ 18,000 B |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in payload["replay"]:
        lines.append(f"| {r['recipe']} | {r['parameters']:,} | {r['pool_size']:,} | "
                     f"{r['seconds']:.2f} | {r['meta_recipe_bytes']:,} | "
                     f"{r['dsse_json_bytes']:,} | {r['packed_bytes']:,} | "
                     f"{'yes' if r['packed_bytes'] <= 18_000 else 'no'} |")
    b = payload["bit_exact"]
    mem = payload["memory"]
    zo, fo = mem["zeroth_order"], mem["first_order"]
    lines += ["", f"Bit-exact across processes: **{'yes' if b['identical'] else 'NO'}** "
              f"(`{b['digests'][0]}`).", "",
              f"## Client memory, {mem['recipe']} on 200 rows", "",
              "| client step | peak RSS (MiB) | above the assembled model (MiB) |",
              "|---|---:|---:|",
              f"| zeroth-order (20 steps, forward passes only) | {zo['peak_mib']:.0f} | "
              f"{zo['above_model_mib']:.0f} |",
              f"| first-order personalization (20 AdamW steps) | {fo['peak_mib']:.0f} | "
              f"{fo['above_model_mib']:.0f} |", "",
              "Both processes import the same stack and assemble the same model first; "
              "the second column is what the training itself added.", ""]
    comm = payload.get("communication")
    if comm is not None:
        s = comm["settings"]
        fa, tr = comm["fedavg"], comm["trajectory"]
        lines += [f"## Communication over a run, {s['recipe']}", "",
                  f"Real Flower federations on the same {s['clients']} IID {comm['data']} "
                  "users, "
                  f"{s['rounds']} rounds each, every message counted (payload bytes per "
                  f"client, down + up). FedAvg: {s['fedavg_local_steps']} local steps per "
                  f"round. Trajectory: K = {s['pool_size']:,}, {s['zo_steps']} steps × "
                  f"{s['seeds_per_step']} seeds per client per round.", "",
                  "| method | bytes per client, whole run | mean test accuracy |",
                  "|---|---:|---:|",
                  f"| round-0 recipe (no federation) | 0 | {comm['round0_accuracy']:.3f} |",
                  f"| FedAvg (Flower) | {fa['bytes_per_client']:,.0f} | "
                  f"{fa['accuracy']:.3f} |",
                  f"| seed trajectory (shared model) | {tr['bytes_per_client']:,.0f} | "
                  f"{tr['accuracy']:.3f} |", "",
                  f"FedAvg ÷ trajectory = **{comm['ratio']:,.0f}×**"
                  + (f" (target ≥ 1000×: {'met' if comm['ratio'] >= 1000 else 'missed'})."
                     if s["recipe"] == "text-bert-tiny" else "."), ""]
    lines += ["![replay time](trajectory.png)", ""]
    return "\n".join(lines)


def figure(payload: dict[str, Any], out: Path) -> Path:
    """trajectory.png: replay seconds per recipe and K."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    labels = [f"{r['recipe']}\nK={r['pool_size']}" for r in payload["replay"]]
    ax.bar(labels, [r["seconds"] for r in payload["replay"]], color="tab:blue")
    ax.set_ylabel("replay seconds (one thread)")
    ax.set_title("Rebuilding the shared model from seeds and scalars")
    return save_figure(fig, out / "trajectory.png")


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2])
