"""Markdown, JSON and PNG for ``simulations/text_small_data.py`` (written atomically)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fedseed._internal.atomic import atomic_path, atomic_write_bytes

#: Wall-time target of `fedseed personalize text-ngram` on a 3,000-row CSV (issue 12).
WALL_TARGET_S = 120.0
#: "A wide margin" over byte-level BERT-tiny, in accuracy points.
WIDE_MARGIN = 0.10


def _verdict(met: bool) -> str:
    return "met" if met else "**missed**"


def render(results: dict[str, Any]) -> str:
    """The Markdown page."""
    fed, sk = results["fedseed"], results["sklearn"]
    ngram, bert = fed["text-ngram"], fed["text-bert-tiny"]

    def mark(run: dict[str, Any]) -> str:
        return " (*reused*)" if run.get("reused") else ""

    best_name = max(sk, key=sk.get)
    best = sk[best_name]
    split = results["split"]
    lines = [
        "# Small-data text classification: text-ngram vs BERT-tiny vs TF-IDF",
        "",
        f"Data: {results['data']['rows']:,} Debian fortunes, {results['data']['per_category']}"
        f" from each of the 10 largest categories ({', '.join(results['data']['categories'])}),"
        " label = category id. One split (the recipe's, seed "
        f"{split['seed']}): {split['train']} train, {split['validation']} validation (early "
        f"stopping only), {split['test']} test rows. scikit-learn fits on the same "
        "train rows and is scored on the same test rows.",
        "",
        "Command: `.venv/bin/python simulations/text_small_data.py` (needs "
        "`apt-get install fortunes`). Machine: "
        f"{results['machine']['cpus']} CPUs, shared with other jobs while this ran (1-minute "
        f"load average {results['machine'].get('load_average_1min_at_start', '?')} at the "
        f"start, {results['machine'].get('load_average_1min_at_end', '?')} at the end), so "
        "wall times are upper bounds. A result marked *reused* comes from an earlier run "
        "of the same derived recipe (same digest) on the same rows.",
        "",
        "| method | test accuracy | wall (s) |",
        "|---|---:|---:|",
        f"| fedseed personalize text-ngram (10 labels){mark(ngram)} | "
        f"{ngram['test_accuracy']:.3f} | "
        f"{ngram['wall_s']:.1f} |",
        f"| fedseed personalize text-bert-tiny (10 labels){mark(bert)} | "
        f"{bert['test_accuracy']:.3f} | "
        f"{bert['wall_s']:.1f} |",
    ]
    for name, score in sk.items():
        lines.append(f"| scikit-learn {name.replace('_', ' ')} | {score:.3f} | |")
    margin = ngram["test_accuracy"] - bert["test_accuracy"]
    gap = ngram["test_accuracy"] - best
    lines += [
        "",
        "## Targets",
        "",
        f"- text-ngram matches TF-IDF + logistic regression (best: {best_name}, "
        f"{best:.3f}): text-ngram {ngram['test_accuracy']:.3f}, "
        f"{gap * 100:+.1f} points: {_verdict(gap >= -0.01)} (within 1 point counts as a match).",
        f"- `fedseed personalize text-ngram` on the 3,000-row CSV under "
        f"{WALL_TARGET_S:.0f} s: {ngram['wall_s']:.1f} s (whole CLI process, tokenisation "
        f"included): {_verdict(ngram['wall_s'] < WALL_TARGET_S)}.",
        f"- beats byte-level BERT-tiny by a wide margin (>= {WIDE_MARGIN * 100:.0f} points): "
        f"{ngram['test_accuracy']:.3f} vs {bert['test_accuracy']:.3f}, "
        f"{margin * 100:+.1f} points: {_verdict(margin >= WIDE_MARGIN)}.",
        "",
        "Commands run (recipes derived from the built-ins with `task.num_labels` 10):",
        "",
        f"- `{ngram['command']}`",
        f"- `{bert['command']}`",
        "",
    ]
    return "\n".join(lines)


def _plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ["text-ngram", "text-bert-tiny", *results["sklearn"]]
    scores = [results["fedseed"]["text-ngram"]["test_accuracy"],
              results["fedseed"]["text-bert-tiny"]["test_accuracy"],
              *results["sklearn"].values()]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.barh(names, scores, color=["C0", "C1"] + ["C7"] * len(results["sklearn"]))
    ax.axvline(0.1, color="k", lw=0.8, ls=":", label="chance")
    ax.set_xlabel("test accuracy, 10 fortunes categories, 3,000 rows")
    ax.invert_yaxis()
    ax.legend(loc="lower right")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def write_report(results: dict[str, Any], folder: Path) -> None:
    """Write ``text_small_data.{json,md,png}`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / "text_small_data.json",
                       (json.dumps(results, indent=1) + "\n").encode())
    atomic_write_bytes(folder / "text_small_data.md", render(results).encode())
    _plot(results, folder / "text_small_data.png")
