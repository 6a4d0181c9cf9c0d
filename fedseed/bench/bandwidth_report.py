"""The bandwidth benchmark's Markdown and plot (docs/results/bandwidth.{md,png})."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fedseed.bench.bandwidth import COMMAND
from fedseed.bench.report import human_bytes, save_figure

#: The roadmap's hope: "competitive below 1 Mbit/s".
ROADMAP_MBIT = 1.0


def verdict_lines(payload: dict[str, Any]) -> list[str]:
    """Per recipe: the crossover, and whether fedseed is faster at 1 Mbit/s."""
    lines = []
    for r in payload["recipes"]:
        at_1 = next(b for b in r["by_bandwidth"] if b["mbit"] == ROADMAP_MBIT)
        faster = at_1["fedseed_seconds"] < at_1["weights_seconds"]
        cross = r["crossover_mbit"]
        where = ("never (the recipe is not smaller than the weights)" if cross is None
                 else f"below **{cross:,.3g} Mbit/s**")
        lines.append(
            f"- **{r['recipe']}**: fedseed is faster {where}. At 1 Mbit/s: fedseed "
            f"{at_1['fedseed_seconds']:,.1f} s vs weights {at_1['weights_seconds']:,.1f} s: "
            f"the roadmap's hope **{'holds' if faster else 'fails'}**.")
    return lines


def markdown(payload: dict[str, Any]) -> str:
    """docs/results/bandwidth.md."""
    m = payload["machine"]
    bws = payload["bandwidths_mbit"]
    out = ["# Time versus bandwidth: fetch a recipe and train, or download the weights?", "",
           f"Written by `{COMMAND}` on {m['cores']} cores ({m['cpu']}), Python {m['python']}, "
           f"torch {m['torch']} ({m['torch_threads']} threads); {payload['seconds']:.0f} s. "
           "fedseed: the signed recipe over the link, fetched from a real local registry and "
           "verified (measured), then local training on the recipe's embedded default data "
           f"until the validation metric first reaches {payload['target_share']:.0%} of what "
           "the full budget reaches (measured). Weights: the trained model as float32 "
           "safetensors over the link. Link time = bytes × 8 / bandwidth, no latency.", "",
           "What is compared is not the same model: the download is someone else's fully "
           "trained model, the fedseed device ends with a model trained on its own data to "
           f"{payload['target_share']:.0%} of its own full-budget result. For personalization "
           "that is the model the device wants; for a shared task the download is the better "
           "model.", "",
           "## Crossover", "", *verdict_lines(payload), "",
           "| recipe | data | weights | signed recipe | weights ÷ recipe | verify | "
           "steps to 95% (of full) | train to 95% | crossover |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in payload["recipes"]:
        cross = "—" if r["crossover_mbit"] is None else f"{r['crossover_mbit']:,.3g} Mbit/s"
        out.append(f"| {r['recipe']} | {r['data']} | {human_bytes(r['weights_bytes'])} | "
                   f"{human_bytes(r['recipe_bytes'])} | {r['ratio_bytes']:,.0f}× | "
                   f"{r['verify_seconds'] * 1e3:.1f} ms | {r['steps_to_target']} "
                   f"({r['steps_full']}) | {r['seconds_to_target']:.2f} s | {cross} |")
    out += ["", "## Seconds to a usable model, by bandwidth", "",
            "| recipe | " + " | ".join(f"{b:g} Mbit/s: fedseed / weights" for b in bws) + " |",
            "|---|" + "---:|" * len(bws)]
    for r in payload["recipes"]:
        cells = [f"{b['fedseed_seconds']:,.2f} / {b['weights_seconds']:,.2f}"
                 for b in r["by_bandwidth"]]
        out.append(f"| {r['recipe']} | " + " | ".join(cells) + " |")
    out += ["", "![time vs bandwidth](bandwidth.png)", ""]
    return "\n".join(out)


def figure(payload: dict[str, Any], path: Path) -> Path:
    """Seconds vs bandwidth per recipe (log-log), crossover marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = payload["recipes"]
    fig, axes = plt.subplots(1, len(rows), figsize=(3.6 * len(rows), 3.4), squeeze=False)
    bw = np.logspace(np.log10(0.05), np.log10(200), 100)
    for ax, r in zip(axes[0], rows, strict=True):
        local = r["verify_seconds"] + r["seconds_to_target"]
        ax.loglog(bw, r["weights_bytes"] * 8 / (bw * 1e6), label="download weights")
        ax.loglog(bw, r["recipe_bytes"] * 8 / (bw * 1e6) + local, "--",
                  label="fedseed: recipe + train to 95%")
        if r["crossover_mbit"] is not None:
            ax.axvline(r["crossover_mbit"], color="grey", lw=0.8)
            ax.annotate(f"{r['crossover_mbit']:.3g} Mbit/s", (r["crossover_mbit"], local),
                        fontsize=7, xytext=(4, 8), textcoords="offset points")
        ax.set_title(r["recipe"], fontsize=9)
        ax.set_xlabel("link (Mbit/s)")
        ax.set_ylabel("seconds")
    axes[0][0].legend(fontsize=7)
    return save_figure(fig, path)
