"""The seed-claims benchmark's Markdown and plot (docs/results/seed_claims.{md,png})."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fedseed.bench.report import human_bytes, save_figure
from fedseed.bench.seed_claims import COMMAND


def markdown(payload: dict[str, Any]) -> str:
    """docs/results/seed_claims.md."""
    m = payload["machine"]
    out = ["# The seed roadmap's claims, measured", "",
           f"Written by `{COMMAND}` on {m['cores']} cores ({m['cpu']}), Python {m['python']}, "
           f"torch {m['torch']}; {payload['seconds']:.0f} s. The roadmap's seed: per tensor, "
           "mean and std, and for every matrix the top-k principal directions of its rows with "
           "their variances; assembly draws new rows with exactly those statistics "
           "(fedseed/bench/seed_compress.py). Each model is trained as published on its "
           "built-in data and scored on that data's test split. Sizes count the stored "
           "numbers (float32: 4 bytes; pruning: a bitmap plus the kept values).", "",
           "## Claims and verdicts", "", "| roadmap claim | measured here | verdict |",
           "|---|---|---|"]
    for v in payload["verdicts"]:
        out.append(f"| {v['claim']} | {v['measured']} | **{v['verdict']}** |")
    out += ["", "Compression is only real once accuracy is counted: a seed that assembles a "
            "model at chance level has compressed the shapes, not the model. The low-rank "
            "rows (the same k directions, with each row's coefficients kept) show what the "
            "same k buys when the knowledge is kept.", ""]
    for model in payload["models"]:
        metric = model["metric"]
        out += [f"## {model['recipe']} on {model['data']} ({model['parameters']:,} parameters, "
                f"trained {metric} {model['trained']:.3f}"
                + (f", chance {model['chance']:.3f}" if model["chance"] is not None else "")
                + ")", "",
                f"| method | bytes | ratio | zero-shot {metric} |", "|---|---:|---:|---:|"]
        for r in model["rows"]:
            out.append(f"| {r['method']} | {human_bytes(r['bytes'])} | {r['ratio']:,.1f}× | "
                       f"{r['zero_shot']:.3f} |")
        out += ["", f"Fine-tuned with the recipe as published, from each start (test {metric}):",
                "", "| start | test (mean) | std over repeats | each repeat | steps |",
                "|---|---:|---:|---|---:|"]
        for a in model["ablation"]:
            each = ", ".join(f"{t:.3f}" for t in a["tests"])
            out.append(f"| {a['start']} | {a['test']:.3f} | {a['spread']:.3f} | {each} | "
                       f"{a['steps']:.0f} |")
        out.append("")
    if payload["shape_claims"]:
        ks = payload["ks"]
        out += ["## Seed sizes for the models the roadmap named (from their shapes)", "",
                "| model | parameters | float32 | " + " | ".join(f"k={k}" for k in ks)
                + " | roadmap |", "|---|---:|---:|" + "---:|" * len(ks) + "---:|"]
        for s in payload["shape_claims"]:
            cells = [f"{human_bytes(s['seed_bytes'][str(k)])} ({s['ratios'][str(k)]:,.0f}×)"
                     for k in ks]
            out.append(f"| {s['model']} | {s['parameters']:,} | "
                       f"{human_bytes(s['float32_bytes'])} | "
                       + " | ".join(cells) + f" | {s['claimed_ratio']:,.0f}× |")
        out.append("")
    out += ["![size vs accuracy](seed_claims.png)", ""]
    return "\n".join(out)


def figure(payload: dict[str, Any], path: Path) -> Path:
    """Per model: compression ratio (log) vs zero-shot metric, one marker per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = payload["models"]
    fig, axes = plt.subplots(1, len(models), figsize=(3.8 * len(models), 3.4), squeeze=False)
    styles = {"seed": ("o", "roadmap seed"), "low-rank": ("s", "low rank (SVD)"),
              "pruning": ("^", "50% pruning"), "int8": ("D", "int8"), "gzip": ("*", "gzip -9")}
    for ax, model in zip(axes[0], models, strict=True):
        for kind, (marker, label) in styles.items():
            rows = [r for r in model["rows"] if r.get("kind") == kind]
            ax.scatter([r["ratio"] for r in rows], [r["zero_shot"] for r in rows],
                       marker=marker, label=label, s=22)
        ax.axhline(model["trained"], color="grey", lw=0.8, ls="--")
        if model["chance"] is not None:
            ax.axhline(model["chance"], color="red", lw=0.8, ls=":")
        ax.set_xscale("log")
        if not model["higher_is_better"]:
            ax.set_yscale("log")
        ax.set_title(model["recipe"], fontsize=9)
        ax.set_xlabel("compression ratio")
        ax.set_ylabel(f"zero-shot {model['metric']}")
    axes[0][0].legend(fontsize=6)
    return save_figure(fig, path)
