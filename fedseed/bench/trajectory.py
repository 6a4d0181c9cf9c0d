"""``fedseed bench trajectory``: what seed trajectories cost.

- Replay time: rebuilding ``w0 - sum_k c_k z_k`` for digits-mlp and text-bert-tiny at
  K = 1,024 and 4,096 (every coefficient nonzero: the worst case), median of runs.
- Bit-exact replay: the same recipe replayed in two fresh processes gives the same
  state-dict digest.
- Client memory: peak RSS of a zeroth-order client step (forward passes only) against
  first-order personalization of the same model on the same data, each in its own
  process, also reported above the process's RSS once the model is assembled (the
  imports and the model are common to both).
- Meta-recipe size against K, for a small and a large model.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

CASES = [("digits-mlp", 1024), ("digits-mlp", 4096), ("text-bert-tiny", 1024),
         ("text-bert-tiny", 4096)]


def trajectory_recipe(name: str, pool: int, seed: int = 0) -> Any:
    """``name`` with a pool of ``pool`` seeds, every coefficient nonzero."""
    import numpy as np

    from fedseed.meta import Options, TrajectoryAggregator
    from fedseed.recipe.builtin import resolve_recipe
    from fedseed.recipe.trajectory import encode_floats

    meta = TrajectoryAggregator(Options(), pool_size=pool).prepare(resolve_recipe(name))
    values = (np.random.default_rng(seed).standard_normal(pool) * 1e-4).astype(np.float32)
    assert meta.trajectory is not None
    return meta.model_copy(update={"trajectory": meta.trajectory.model_copy(
        update={"coefficients": encode_floats(values)})})


def replay_seconds(recipe: Any, repeats: int) -> float:
    """Median wall time of replaying ``recipe`` onto its assembled ``w0``."""
    import torch

    from fedseed.assemble import assemble
    from fedseed.trajectory.replay import apply_trajectory

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

    from fedseed.assemble import assemble
    from fedseed.recipe.codec import parse_recipe

    torch.set_num_threads(1)
    recipe = parse_recipe(Path(recipe_path).read_bytes())
    if kind == "digest":
        from fedseed.assemble import state_dict_digest

        print(json.dumps({"digest": state_dict_digest(assemble(recipe))}))
        return
    from fedseed.data.builtin import load_builtin_dataset

    data = "toy-text" if recipe.task.modality == "text" else "digits"
    examples = load_builtin_dataset(data).take(list(range(200)))
    assemble(recipe)  # imports and one model: what both kinds need anyway
    base = psutil.Process().memory_info().rss
    if kind == "zo":
        from fedseed.trajectory.zo import zo_train

        zo_train(recipe, examples, seed=0)
    else:
        from fedseed.personalize import personalize_examples

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


def run(out: Path, repeats: int = 3, on_step: Callable[[str], None] | None = None,
        cases: list[tuple[str, int]] | None = None, memory_recipe: str = "text-bert-tiny"
        ) -> dict[str, Any]:
    """Measure, write ``trajectory.{json,md,png}`` under ``out``."""
    import tempfile

    from fedseed.assemble import parameter_count
    from fedseed.bench.report import machine, write_results
    from fedseed.recipe.codec import canonical_bytes

    step = on_step or (lambda text: None)
    replay = []
    for name, pool in cases or CASES:
        step(f"replay {name} K={pool}")
        recipe = trajectory_recipe(name, pool)
        replay.append({"recipe": name, "pool_size": pool, "parameters": parameter_count(recipe),
                       "seconds": replay_seconds(recipe, repeats),
                       "meta_recipe_bytes": len(canonical_bytes(recipe))})
    with tempfile.TemporaryDirectory() as tmp:
        small = Path(tmp) / "digits.json"
        small.write_bytes(canonical_bytes(trajectory_recipe("digits-mlp", 1024)))
        step("bit-exact replay in two processes")
        digests = [_in_child("digest", small)["digest"] for _ in range(2)]
        text = Path(tmp) / "text.json"
        from fedseed.meta import Options, TrajectoryAggregator
        from fedseed.recipe.builtin import resolve_recipe

        zo_recipe = TrajectoryAggregator(Options(), pool_size=1024, steps=20,
                                         seeds_per_step=1).prepare(
            resolve_recipe(memory_recipe))
        text.write_bytes(canonical_bytes(zo_recipe))
        step(f"client memory: zeroth-order vs first-order ({memory_recipe})")
        memory = {"recipe": memory_recipe, "zeroth_order": _in_child("zo", text),
                  "first_order": _in_child("fo", text)}
    payload = {"machine": machine(), "replay": replay,
               "bit_exact": {"digests": digests, "identical": digests[0] == digests[1]},
               "memory": memory}
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
             "## Replay (every coefficient nonzero)", "",
             "| recipe | parameters | K | replay seconds | meta-recipe bytes |",
             "|---|---:|---:|---:|---:|"]
    for r in payload["replay"]:
        lines.append(f"| {r['recipe']} | {r['parameters']:,} | {r['pool_size']:,} | "
                     f"{r['seconds']:.2f} | {r['meta_recipe_bytes']:,} |")
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
              "the second column is what the training itself added.", "",
              "![replay time](trajectory.png)", ""]
    return "\n".join(lines)


def figure(payload: dict[str, Any], out: Path) -> Path:
    """trajectory.png: replay seconds per recipe and K."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fedseed.bench.report import save_figure

    fig, ax = plt.subplots(figsize=(6, 3.5))
    labels = [f"{r['recipe']}\nK={r['pool_size']}" for r in payload["replay"]]
    ax.bar(labels, [r["seconds"] for r in payload["replay"]], color="tab:blue")
    ax.set_ylabel("replay seconds (one thread)")
    ax.set_title("Rebuilding the shared model from seeds and scalars")
    return save_figure(fig, out / "trajectory.png")


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2])
