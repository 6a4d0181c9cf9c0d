"""``privacy.md`` and ``privacy.png`` from ``fedseed bench privacy``'s JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fedseed.bench.report import human_bytes

LABELS = {"recipes": "fedseed recipes (central DP on evidence)",
          "trajectory": "fedseed first-order trajectory + FT (central DP on coefficients)",
          "flower-dp-fedavg": "Flower DP FedAvg + FT (server-side fixed clipping)"}


def _eps(value: float | None) -> str:
    return "∞ (no DP)" if value is None else f"{value:g}"


def _num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown(payload: dict[str, Any]) -> str:
    lines = [
        "# Privacy against utility",
        "",
        f"`{payload['command']}` (config `{payload['config']}`), one run, "
        f"{payload['seconds'] / 60:.1f} min on {payload['machine'].get('cores')} cores. "
        "Every method runs on the same users and seeds; the score is the mean test "
        "accuracy after each user personalises (trains the meta-recipe, or fine-tunes "
        "the shared / global model). Client-level (epsilon, delta) at delta = 1/N, "
        "accounted per round by Renyi DP without amplification by sampling (Flower's "
        "`RdpAccountant`, Google's dp-accounting). Each private run's noise multiplier is "
        "the smallest whose rounds stay within the target; the *spent* column is the "
        "accountant's figure after the run (for Flower DP FedAvg, Flower's own accountant "
        "inside its DP strategy). Clipping bounds: the median first-update norm of the "
        "held-out users, who never federate. See docs/privacy.md for what is covered.",
        "",
    ]
    for s in payload["scenarios"]:
        lines += [f"## {s['name']} ({s['recipe']} on {s['dataset']}: {s['federated']} "
                  f"federated users, delta = {s['delta']:.3g})", "",
                  f"Schedules: recipes {s['schedules']['recipes_rounds']} rounds; trajectory "
                  f"{s['schedules']['trajectory']}; FedAvg {s['schedules']['fedavg']}. "
                  f"Clips: first-order {s['clips']['trajectory']:.4g}, FedAvg "
                  f"{s['clips']['flower-dp-fedavg']:.4g}. No federation (local-default): "
                  f"{s['local_default']:.3f}.", "",
                  "| epsilon | method | mean personalised accuracy | worst 10% | shared / "
                  "global model | noise multiplier | epsilon spent | bytes / client |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in s["rows"]:
            lines.append(f"| {_eps(r['epsilon'])} | {LABELS[r['method']]} | "
                         f"{r['mean']:.3f} | {r['worst10']:.3f} | {_num(r['shared_mean'])} | "
                         f"{_num(r['noise_multiplier'], 3)} | {_num(r['epsilon_spent'], 2)} | "
                         f"{human_bytes(r['bytes_per_client'])} |")
        lines.append("")
    lines += ["## Targets (epsilon = 8)", "",
              "| scenario | method | points lost vs no DP | allowed | met | beats Flower DP "
              "FedAvg (its accuracy) |", "|---|---|---|---|---|---|"]
    for t in payload["targets"]:
        lines.append(f"| {t['scenario']} | {t['method']} | {t['points_lost']:+.1f} | "
                     f"≤ {t['allowed']:g} | {'yes' if t['met'] else '**no**'} | "
                     f"{'yes' if t['beats_flower'] else '**no**'} "
                     f"({_num(t['flower'])}) |")
    lines.append("")
    return "\n".join(lines)


def figure(payload: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fedseed.bench.report import save_figure

    scenarios = payload["scenarios"]
    fig, axes = plt.subplots(1, len(scenarios), figsize=(6 * len(scenarios), 4.2),
                             squeeze=False)
    for ax, s in zip(axes[0], scenarios, strict=True):
        finite = sorted({r["epsilon"] for r in s["rows"] if r["epsilon"] is not None})
        ticks = [*finite, (finite[-1] * 2 if finite else 1.0)]  # no DP drawn at the right
        for method in ("recipes", "trajectory", "flower-dp-fedavg"):
            rows = sorted((r for r in s["rows"] if r["method"] == method),
                          key=lambda r: (r["epsilon"] is None, r["epsilon"] or 0))
            xs = [ticks[-1] if r["epsilon"] is None else r["epsilon"] for r in rows]
            ax.plot(xs, [r["mean"] for r in rows], marker="o", label=LABELS[method])
        ax.axhline(s["local_default"], color="grey", linestyle=":", label="no federation")
        ax.set_xscale("log")
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"{t:g}" for t in finite] + ["∞"])
        ax.set_xlabel("epsilon (delta = 1/N)")
        ax.set_ylabel("mean personalised test accuracy")
        ax.set_title(s["name"])
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return save_figure(fig, path)


__all__ = ["figure", "markdown"]
