"""The budget benchmark's Markdown and heat maps (docs/results/budget.{md,png})."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fedseed.bench.budget import CLAIM_SAMPLES, CLAIM_SHARE, CLAIM_STEPS, COMMAND
from fedseed.bench.report import save_figure

_STARTS = {"default": "the built-in recipe", "meta": "a fedseed meta-recipe",
           "shared": "the first-order shared model (replayed from seeds)"}


def _grid(task: dict[str, Any], m: dict[str, Any]) -> list[str]:
    by = {(c["samples"], c["steps"]): c for c in m["cells"]}
    head = "| samples \\ steps | " + " | ".join(str(s) for s in task["steps"]) + " |"
    rows = [head, "|---:|" + "---:|" * len(task["steps"])]
    for n in task["samples"]:
        cells = []
        for s in task["steps"]:
            share = by[n, s]["share"]
            text = f"{share:.0%}"
            cells.append(f"**{text}**" if share >= CLAIM_SHARE else text)
        rows.append(f"| {n} | " + " | ".join(cells) + " |")
    return rows


def claim_lines(task: dict[str, Any]) -> list[str]:
    """The roadmap's claim, per start: holds or fails, with the cells."""
    lines = []
    for start, v in task["claim"].items():
        best = v["best_under"]
        smallest = v["smallest_reaching"]
        where = (f"smallest budget reaching {CLAIM_SHARE:.0%} anywhere: {smallest['samples']} "
                 f"samples × {smallest['steps']} steps ({smallest['share']:.0%})"
                 if smallest else f"no cell of the grid reaches {CLAIM_SHARE:.0%}")
        if v["holds"]:
            cells = ", ".join(f"{n}×{s}" for n, s in v["cells_reaching"])
            lines.append(f"- **{task['task']}, from {_STARTS[start]}: holds** — cells "
                         f"(samples × steps) under the limits reaching {CLAIM_SHARE:.0%}: "
                         f"{cells}; {where}.")
        else:
            lines.append(f"- **{task['task']}, from {_STARTS[start]}: fails** — the best cell "
                         f"under the limits is {best['samples']} samples × {best['steps']} "
                         f"steps at {best['share']:.0%}; {where}.")
    return lines


def markdown(payload: dict[str, Any]) -> str:
    """docs/results/budget.md."""
    m = payload["machine"]
    out = ["# The minimal fine-tuning budget", "",
           f"Written by `{COMMAND}` (config `{payload['config']}`) on {m['cores']} cores "
           f"({m['cpu']}), Python {m['python']}, torch {m['torch']}; {payload['seconds'] / 60:.1f}"
           " min. A new device trains exactly *steps* optimizer steps (the recipe's schedule "
           "compressed into them, no early stopping) on *samples* rows drawn from its pool, "
           "and is scored on a fixed test set. Each cell is the mean over the draws, as a "
           "share of the **reference**: the recipe as published (its own budget and early "
           "stopping) trained on the whole pool. Bold: ≥ 95%.", "",
           f"## The roadmap's claim: < {CLAIM_SAMPLES} samples and < {CLAIM_STEPS} steps reach "
           f"{CLAIM_SHARE:.0%}", ""]
    for t in payload["tasks"]:
        out += claim_lines(t)
    out.append("")
    for t in payload["tasks"]:
        r, rows = t["reference"], t["rows"]
        out += [f"## {t['task']}: {t['recipe']} on {t['dataset']}", "",
                f"Reference: test accuracy **{r['accuracy']:.3f}** after {r['steps']} steps "
                f"(budget {r['max_steps']}) on the whole pool of {rows['pool']} rows. Fixed "
                f"test set {rows['test']} rows, validation {rows['validation']}; the "
                f"federations behind the other starts ran among {rows['federation_users']} "
                f"users holding the other {rows['federation']} rows. {t['repeats']} draws "
                f"per cell; {t['seconds']:.0f} s.", ""]
        for mp in t["maps"]:
            d = mp["details"]
            extra = ""
            if mp["start"] == "meta":
                extra = (f" ({d['aggregator']}, {d['rounds']} rounds; lr {d['optimizer.lr']:.3g}, "
                         f"batch {d['budget.batch_size']})")
            elif mp["start"] == "shared":
                extra = (f" ({d['rounds']} rounds × {d['local_steps']} local steps, K "
                         f"{d['projection_k']} {d['projection_dtype']}, "
                         f"{d['bytes_per_client'] / 1e3:,.0f} KB per client)")
            out += [f"### From {_STARTS[mp['start']]}{extra}", "", *_grid(t, mp), ""]
    out += ["No pretrained base exists for these recipes: the only text base fedseed has is "
            "byte-level BERT-tiny (results/pretrained_base.md), where it did not beat "
            "training from scratch. The *shared* start stands in as the learned starting "
            "point fedseed can give a new device without any weights crossing the wire.", "",
            "![heat maps](budget.png)", ""]
    return "\n".join(out)


def figure(payload: dict[str, Any], path: Path) -> Path:
    """One heat map per task and start: share of the reference per (samples, steps)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = payload["tasks"]
    cols = max(len(t["maps"]) for t in tasks)
    fig, axes = plt.subplots(len(tasks), cols, figsize=(4.2 * cols, 3.6 * len(tasks)),
                             squeeze=False)
    for i, t in enumerate(tasks):
        for j in range(cols):
            ax = axes[i][j]
            if j >= len(t["maps"]):
                ax.axis("off")
                continue
            mp = t["maps"][j]
            by = {(c["samples"], c["steps"]): c["share"] for c in mp["cells"]}
            grid = [[by[n, s] for s in t["steps"]] for n in t["samples"]]
            image = ax.imshow(grid, vmin=0.0, vmax=1.0, cmap="viridis", origin="lower",
                              aspect="auto")
            for a, n in enumerate(t["samples"]):
                for b, s in enumerate(t["steps"]):
                    v = by[n, s]
                    ax.text(b, a, f"{v:.0%}", ha="center", va="center", fontsize=7,
                            color="black" if v > 0.6 else "white",
                            fontweight="bold" if v >= CLAIM_SHARE else "normal")
            ax.set_xticks(range(len(t["steps"])), [str(s) for s in t["steps"]])
            ax.set_yticks(range(len(t["samples"])), [str(n) for n in t["samples"]])
            ax.set_xlabel("optimizer steps")
            ax.set_ylabel("training samples")
            ax.set_title(f"{t['task']}: from {mp['start']}", fontsize=9)
            fig.colorbar(image, ax=ax, shrink=0.8, label="share of the reference")
    return save_figure(fig, path)
