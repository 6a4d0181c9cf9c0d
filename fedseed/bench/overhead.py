"""Overhead of ``personalize``'s training loop against a bare PyTorch loop, and the
peak memory of personalising on a device.

Both loops start from the same assembled weights and run the same optimizer steps
on the same batches, with the same schedule, clipping and validation cadence; the
bare loop just skips fedseed's bookkeeping (curve, per-tensor optimizer statistics,
progress callback, evidence). They alternate in one process, and the ratio of
median times is reported. Peak resident memory is that of the real
``fedseed personalize`` command on a local CSV file
(:mod:`fedseed.bench.peak_memory`).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fedseed.assemble import assemble
from fedseed.bench.peak_memory import TARGET_MIB, measure_peak_rss
from fedseed.bench.report import machine, save_figure, write_results
from fedseed.data import load_examples, split_examples
from fedseed.data.tensors import to_tensors
from fedseed.recipe import load_builtin

CASES: tuple[tuple[str, str], ...] = (("digits-mlp", "digits"), ("text-bert-tiny", "toy-text"))


def _bare_loop(recipe: Any, splits: Any) -> float:
    """Plain PyTorch: forward, loss, backward, clip, step, periodic validation."""
    import torch

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


def run(out_dir: Path, repeats: int = 3, on_run: Callable[[], None] | None = None, *,
        cases: tuple[tuple[str, str], ...] = CASES, steps: int | None = None) -> dict[str, Any]:
    """Measure every case, write ``overhead.{json,md,png}`` under ``out_dir``.

    ``cases`` and ``steps`` exist for the smoke test in ``make test``; ``make bench``
    uses the defaults.
    """
    import torch

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
               "target_peak_rss_mib": TARGET_MIB, "overhead": overhead, "memory": memory}
    lines = [
        "# Training-loop overhead and peak memory", "",
        "`fedseed bench overhead` (also part of `make bench`). Both loops run the same "
        "steps on the same batches, from the same weights, alternating in one process, "
        f"with one torch thread; median of {repeats} runs each. Target: ratio <= 1.10.", "",
        "| recipe | data | steps | batch | fedseed (s) | bare PyTorch (s) | ratio |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for o in overhead:
        lines.append(f"| {o['recipe']} | {o['data']} | {o['steps']} | {o['batch_size']} | "
                     f"{o['fedseed_seconds']:.3f} | {o['bare_seconds']:.3f} | {o['ratio']:.3f} |")
    lines += _memory_lines(memory, steps)
    for o in overhead:
        verdict = "within" if o["ratio"] <= 1.10 else "ABOVE"
        lines.append(f"- {o['recipe']}: overhead ratio {o['ratio']:.3f}, {verdict} the 1.10 "
                     "target.")
    for m in memory:
        if m["recipe"] == "text-bert-tiny":
            verdict = "within" if m["peak_rss_mib"] <= TARGET_MIB else "ABOVE"
            lines.append(f"- text-bert-tiny: peak {m['peak_rss_mib']:.0f} MiB, {verdict} the "
                         f"{TARGET_MIB} MiB edge bound.")
    lines += ["", f"Machine: {info['cores']} cores ({info['cpu']}), torch {info['torch']}, "
              f"Python {info['python']}. Absolute times are machine-dependent; the ratios "
              "are the result. Memory depends little on the machine.", ""]
    written = write_results(out_dir, "overhead", payload, "\n".join(lines))
    written.append(_plot(out_dir / "overhead.png", overhead, memory))
    payload["written"] = [str(p) for p in written]
    return payload


def _memory_lines(memory: list[dict[str, Any]], steps: int | None) -> list[str]:
    budget = "the recipe's own budget" if steps is None else f"{steps} steps"
    threads = ", ".join(sorted({str(m["torch_threads"]) for m in memory}))
    children = sum(m["children"] for m in memory)
    lines = [
        "", "## Peak memory of `fedseed personalize`", "",
        "The command as a user runs it, on the data set written as a CSV file, with "
        f"{budget} and torch's default threads ({threads} here). The peak is the kernel's "
        "high-water mark of that process and its children (`ru_maxrss` from `wait4`; "
        f"{'no child process was started' if not children else f'{children} children'}"
        f"). Target for text-bert-tiny: <= {TARGET_MIB} MiB.", "",
        "| recipe | command | peak RSS (MiB) | target | verdict |", "|---|---|---:|---:|---|",
    ]
    for m in memory:
        target = f"<= {TARGET_MIB}" if m["recipe"] == "text-bert-tiny" else "-"
        verdict = "-" if target == "-" else (
            "pass" if m["peak_rss_mib"] <= TARGET_MIB else "MISS")
        lines.append(f"| {m['recipe']} | `{m['command']}` | {m['peak_rss_mib']:.0f} | "
                     f"{target} | {verdict} |")
    stage_names = list(memory[0]["stages_mib"])
    lines += ["", "Where it goes: the high-water mark (MiB) after each step of an instrumented "
              "process doing the same steps one at a time, and what was resident at its end: "
              "anonymous memory, and file-backed pages (mostly the code of torch's shared "
              "libraries, clean and shared with any other process using them).", "",
              "| recipe | " + " | ".join(stage_names) + " | end: anonymous | end: file-backed "
              "| heavy imports |",
              "|---|" + "---:|" * (len(stage_names) + 2) + "---|"]
    for m in memory:
        end = m["resident_at_end_mib"]
        heavy = ", ".join(m["heavy_imports"]) or "none"
        lines.append(f"| {m['recipe']} | " + " | ".join(
            f"{m['stages_mib'][s]:.0f}" for s in stage_names)
            + f" | {end['anonymous']:.0f} | {end['file_backed']:.0f} | {heavy} |")
    lines += ["", "Heavy imports lists which of datasets, pandas, pyarrow, scipy.optimize and "
              "scikit-learn the process imported. A plain CSV file is read with the standard "
              "library; scipy.optimize, which transformers imports for object-detection "
              "losses, is deferred until called; glibc returns freed tensor memory "
              "(docs/personalize.md#memory).", ""]
    return lines


def _plot(path: Path, overhead: list[dict[str, Any]], memory: list[dict[str, Any]]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    right.axhline(TARGET_MIB, color="#c44e52", linestyle="--",
                  label=f"edge bound {TARGET_MIB} MiB")
    right.set_ylabel("peak RSS (MiB)")
    right.set_title("peak memory of personalize")
    right.legend()
    return save_figure(fig, path)
