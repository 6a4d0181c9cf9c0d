"""The multi-task benchmark's Markdown and plot (docs/results/multi_task.{md,png})."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fedseed.bench.multi_task import COMMAND, TARGET_POINTS
from fedseed.bench.report import human_bytes, save_figure

METHODS = ("local-default", "fedseed-shared", "fedseed-per-task", "fedavg", "fedavg+ft")


def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.3f}"


def markdown(payload: dict[str, Any]) -> str:
    """docs/results/multi_task.md."""
    m, s = payload["machine"], payload["settings"]
    out = ["# Users with different tasks in one federation", "",
           f"Written by `{COMMAND}` (config `{payload['config']}`) on {m['cores']} cores "
           f"({m['cpu']}), torch {m['torch']}; {payload['seconds'] / 60:.1f} min. "
           f"{s['users']} users on the digits (Dirichlet α = {s['alpha']} over the digit), "
           f"split round-robin into the tasks {', '.join(s['tasks'])}; "
           f"{s['held_out']:.0%} of each group held out of every federation. fedseed: "
           f"{s['rounds']} rounds of `{s['aggregator']}`; FedAvg: {s['fedavg_rounds']} rounds × "
           f"{s['fedavg_local_steps']} local steps, run once per task group (one model, one "
           "task). Each user is scored on its own test split, on its own task.", "",
           f"## Target: every group's personalised mean beats its local-default by ≥ "
           f"{TARGET_POINTS:g} points", ""]
    for t in payload["targets"]:
        out.append(f"- **{t['task']}**: fedseed-shared {t['fedseed_shared']:.3f} vs local-default "
                   f"{t['local_default']:.3f}: {t['points']:+.1f} points: "
                   f"**{'met' if t['met'] else 'missed'}**.")
    out += ["", "## Mean test accuracy per task group", "",
            "| method | " + " | ".join(f"{g['task']} ({g['labels']} labels, {g['users']} users)"
                                      for g in payload["groups"]) + " | held-out users, all "
            "groups | bytes / client |", "|---|" + "---:|" * (len(payload["groups"]) + 2)]
    for method in (m for m in METHODS if m in payload["groups"][0]["methods"]):
        cells = [_fmt(g["methods"][method]["mean"]) for g in payload["groups"]]
        held = [g["methods"][method]["held_out_mean"] for g in payload["groups"]]
        held_mean = sum(h for h in held if h is not None) / max(1, sum(h is not None
                                                                       for h in held))
        c = payload["costs"].get(method)
        size = human_bytes(c["bytes_down"] + c["bytes_up"]) if c else "0"
        out.append(f"| {method} | " + " | ".join(cells) + f" | {held_mean:.3f} | {size} |")
    shared = payload["costs"]["fedseed-shared"]
    meta = shared.get("meta", {})
    out += ["", f"The shared federation accepted {shared['accepted']} client recipes and "
            f"rejected {shared['rejected']}. The shared meta-recipe every group personalised with: "
            + ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in meta.items()) + ".", "",
            "How it works (fedseed.meta.tasks, docs/meta-recipes.md): the meta-recipe is one "
            "shared training section; a device runs it with its own `task.num_labels`; the "
            "server accepts only label counts its operator listed (`task-labels`), and puts "
            "every reply's losses on the meta-recipe's task scale (× log K_meta / log K) "
            "before aggregating. fedseed-per-task is the per-task design (one meta-recipe per "
            "group): the comparison shows what sharing the section across tasks buys.", "",
            "![per-group accuracy](multi_task.png)", ""]
    return "\n".join(out)


def figure(payload: dict[str, Any], path: Path) -> Path:
    """Grouped bars: mean test accuracy per task group and method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = payload["groups"]
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    width = 0.8 / len(METHODS)  # the same bar width whichever methods ran
    run = [m for m in METHODS if m in groups[0]["methods"]]
    for j, method in enumerate(run):
        values = [g["methods"][method]["mean"] or 0.0 for g in groups]
        ax.bar([i + j * width for i in range(len(groups))], values, width, label=method)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(groups))],
                  [f"{g['task']} ({g['labels']})" for g in groups])
    ax.set_ylabel("mean test accuracy")
    ax.set_ylim(0, 1.15)  # room for the legend above the bars
    ax.legend(fontsize=7, ncol=len(run), loc="upper center")
    return save_figure(fig, path)
