"""Overhead of ``personalize``'s training loop against a bare PyTorch loop, and the
peak memory of personalising on a device.

Both loops start from the same assembled weights and run the same optimizer steps
on the same batches, with the same schedule, clipping and validation cadence; the
bare loop just skips fedseed's bookkeeping (curve, per-tensor optimizer statistics,
progress callback, evidence). They alternate in one process, and the ratio of
median times is reported. Peak resident memory is measured in a fresh child process
per recipe (``VmHWM``), running the real ``personalize`` on a local file.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

CASES: tuple[tuple[str, str], ...] = (("digits-mlp", "digits"), ("text-bert-tiny", "toy-text"))


def _bare_loop(recipe: Any, splits: Any) -> float:
    """Plain PyTorch: forward, loss, backward, clip, step, periodic validation."""
    import torch

    from fedseed.assemble import assemble
    from fedseed.data.tensors import to_tensors
    from fedseed.train.loop import batch_order
    from fedseed.train.objectives import evaluate, logits_of, loss_sum, trim_padding
    from fedseed.train.optim import build_optimizer
    from fedseed.train.schedule import lr_multiplier

    model = assemble(recipe)
    train, val = to_tensors(splits.train, recipe), to_tensors(splits.validation, recipe)
    budget = recipe.budget
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.init.seed)
        opt = build_optimizer(recipe.optimizer, model)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: lr_multiplier(recipe.schedule, budget.max_steps, s))
        model.train()
        n = int(train["labels"].shape[0])
        for step, index in enumerate(batch_order(n, budget.batch_size, budget.max_steps,
                                                 recipe.init.seed), start=1):
            batch = trim_padding({k: v[index] for k, v in train.items()})
            total, terms = loss_sum(logits_of(model, batch, recipe), batch, recipe)
            opt.zero_grad(set_to_none=True)
            (total / terms).backward()
            if budget.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), budget.grad_clip)
            opt.step()
            sched.step()
            if step % budget.eval_every == 0 or step == budget.max_steps:
                evaluate(model, val, recipe)
    return time.perf_counter() - start


def _fedseed_loop(recipe: Any, splits: Any) -> float:
    from fedseed.assemble import assemble
    from fedseed.train.loop import train

    model = assemble(recipe)
    start = time.perf_counter()
    train(recipe, model, splits, progress=lambda p: None)
    return time.perf_counter() - start


def measure_overhead(name: str, data: str, repeats: int = 3,
                     on_run: Callable[[], None] | None = None,
                     steps: int | None = None) -> dict[str, Any]:
    """Median wall time of both loops over ``repeats`` alternating runs.

    ``steps`` shortens the recipe's budget (for the smoke test); the published
    numbers use the recipe's own ``max_steps``.
    """
    from fedseed.data import load_examples, split_examples
    from fedseed.recipe import load_builtin

    recipe = load_builtin(name)
    # Fixed work for both loops: early stopping would make step counts differ.
    budget: dict[str, Any] = {"early_stopping": None}
    if steps is not None:
        budget |= {"max_steps": steps, "eval_every": min(steps, recipe.budget.eval_every)}
    recipe = recipe.model_copy(update={"budget": recipe.budget.model_copy(update=budget)})
    splits = split_examples(load_examples(data, recipe), recipe.split)
    times: dict[str, list[float]] = {"fedseed": [], "bare": []}
    _bare_loop(recipe, splits)  # warm-up: first-call allocations and kernel selection
    for _ in range(repeats):
        times["bare"].append(_bare_loop(recipe, splits))
        times["fedseed"].append(_fedseed_loop(recipe, splits))
        if on_run is not None:
            on_run()
    fed, bare = statistics.median(times["fedseed"]), statistics.median(times["bare"])
    return {
        "recipe": name, "data": data, "steps": recipe.budget.max_steps,
        "batch_size": recipe.budget.batch_size, "repeats": repeats,
        "fedseed_seconds": round(fed, 4), "bare_seconds": round(bare, 4),
        "ratio": round(fed / bare, 4), "runs": times,
    }


# VmHWM, not ru_maxrss: after fork+exec, ru_maxrss still counts the parent's pages,
# while VmHWM is the high-water mark of this process image alone.
_RSS_CHILD = """
import json, sys, tempfile, pathlib
def hwm():
    status = pathlib.Path("/proc/self/status").read_text()
    return int(next(l.split()[1] for l in status.splitlines() if l.startswith("VmHWM:")))
stages = {"python": hwm()}
import torch
torch.set_num_threads(1)
stages["torch imported"] = hwm()
from fedseed.assemble import assemble
from fedseed.data import load_examples
from fedseed.personalize import personalize
from fedseed.recipe import load_builtin
recipe = load_builtin(sys.argv[1])
load_examples(sys.argv[2], recipe)
stages["data read (datasets)"] = hwm()
assemble(recipe)
stages["model assembled"] = hwm()
out = pathlib.Path(tempfile.mkdtemp()) / "out"
assignment = {"budget.max_steps": int(sys.argv[3])} if sys.argv[3] != "-" else None
personalize(recipe, sys.argv[2], out, assignment=assignment)
stages["personalize done"] = hwm()
print(json.dumps(stages))
"""


def measure_peak_rss(name: str, data: str, steps: int | None = None) -> dict[str, Any]:
    """Peak resident memory (MiB) of a fresh process personalising ``name`` on a file."""
    from fedseed.data import load_examples
    from fedseed.recipe import load_builtin

    with tempfile.TemporaryDirectory() as tmp:
        path = _as_file(load_examples(data, load_builtin(name)), Path(tmp))
        done = subprocess.run([sys.executable, "-c", _RSS_CHILD, name, str(path),
                               "-" if steps is None else str(steps)],
                              capture_output=True, text=True, check=True)
    stages = json.loads(done.stdout.strip().splitlines()[-1])
    return {"recipe": name, "data_file": path.suffix,
            "peak_rss_mib": round(stages["personalize done"] / 1024, 1),
            "stages_mib": {k: round(v / 1024, 1) for k, v in stages.items()}}


def _as_file(examples: Any, folder: Path) -> Path:
    """Write examples as the CSV a user would bring, so loading is measured too."""
    import csv

    path = folder / f"{examples.source}.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        if examples.texts is not None:
            writer.writerow(["text", "label"])
            writer.writerows(zip(examples.texts, examples.labels.tolist(), strict=True))
        else:
            width = examples.features.shape[1]
            writer.writerow([f"f{i}" for i in range(width)] + ["label"])
            for row, label in zip(examples.features.tolist(), examples.labels.tolist(),
                                  strict=True):
                writer.writerow([*row, label])
    return path


def run(out_dir: Path, repeats: int = 3, on_run: Callable[[], None] | None = None, *,
        cases: tuple[tuple[str, str], ...] = CASES, steps: int | None = None) -> dict[str, Any]:
    """Measure every case, write ``overhead.{json,md,png}`` under ``out_dir``.

    ``cases`` and ``steps`` exist for the smoke test in ``make test``; ``make bench``
    uses the defaults.
    """
    import torch

    from fedseed.bench.report import machine, write_results

    # One intra-op thread: an edge device's budget, and far less sensitive to other
    # processes on the machine than two threads spinning for two cores.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        overhead = [measure_overhead(name, data, repeats, on_run, steps)
                    for name, data in cases]
    finally:
        torch.set_num_threads(threads)
    memory = [measure_peak_rss(name, data, steps) for name, data in cases]
    info = machine() | {"torch_threads": 1}
    payload: dict[str, Any] = {"benchmark": "overhead", "machine": info, "target_ratio": 1.10,
               "target_peak_rss_mib": 512, "overhead": overhead, "memory": memory}
    lines = [
        "# Training-loop overhead and peak memory", "",
        "`fedseed bench overhead` (also part of `make bench`). Both loops run the same "
        "steps on the same batches, from the same weights, alternating in one process; "
        f"median of {repeats} runs each. Target: ratio <= 1.10.", "",
        "| recipe | data | steps | batch | fedseed (s) | bare PyTorch (s) | ratio |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for o in overhead:
        lines.append(f"| {o['recipe']} | {o['data']} | {o['steps']} | {o['batch_size']} | "
                     f"{o['fedseed_seconds']:.3f} | {o['bare_seconds']:.3f} | {o['ratio']:.3f} |")
    lines += ["", "Peak resident memory (VmHWM) of `personalize` in a fresh process, data "
              "read from a CSV file, one torch thread; the high-water mark after each stage "
              "shows where it goes. Target for text-bert-tiny: < 512 MiB.", ""]
    stage_names = list(memory[0]["stages_mib"])
    lines += ["| recipe | " + " | ".join(stage_names) + " |",
              "|---|" + "---:|" * len(stage_names)]
    lines += [f"| {m['recipe']} | " + " | ".join(f"{m['stages_mib'][s]:.0f}"
                                                for s in stage_names) + " |" for m in memory]
    lines.append("")
    for o in overhead:
        verdict = "within" if o["ratio"] <= 1.10 else "ABOVE"
        lines.append(f"- {o['recipe']}: overhead ratio {o['ratio']:.3f}, {verdict} the 1.10 "
                     "target.")
    for m in memory:
        if m["recipe"] == "text-bert-tiny":
            verdict = "within" if m["peak_rss_mib"] < 512 else "ABOVE"
            lines.append(f"- text-bert-tiny: peak {m['peak_rss_mib']:.0f} MiB, {verdict} the "
                         "512 MiB target. Importing torch, reading the file with `datasets` "
                         "(pyarrow, pandas) and importing transformers' BERT (which pulls in "
                         "torch.distributed, torch._dynamo, sympy and scipy) account for most "
                         "of it before the first step; see the stage columns.")
    lines += ["", f"Machine: {info['cores']} cores ({info['cpu']}), torch {info['torch']} "
              f"with {info['torch_threads']} threads, Python {info['python']}. Absolute "
              "times are machine-dependent; the ratios are the result.", ""]
    written = write_results(out_dir, "overhead", payload, "\n".join(lines))
    written.append(_plot(out_dir / "overhead.png", overhead, memory))
    payload["written"] = [str(p) for p in written]
    return payload


def _plot(path: Path, overhead: list[dict[str, Any]], memory: list[dict[str, Any]]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fedseed.bench.report import save_figure

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    names = [o["recipe"] for o in overhead]
    left.bar(names, [o["ratio"] for o in overhead], color="#4c72b0")
    left.axhline(1.10, color="#c44e52", linestyle="--", label="target 1.10")
    left.axhline(1.0, color="gray", linewidth=0.8)
    left.set_ylabel("fedseed time / bare PyTorch time")
    left.set_title("training-loop overhead")
    left.legend()
    right.bar([m["recipe"] for m in memory], [m["peak_rss_mib"] for m in memory],
              color="#55a868")
    right.axhline(512, color="#c44e52", linestyle="--", label="edge bound 512 MiB")
    right.set_ylabel("peak RSS (MiB)")
    right.set_title("peak memory of personalize")
    right.legend()
    return save_figure(fig, path)
