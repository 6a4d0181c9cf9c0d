"""Tables and plots of the personalization benchmark (pure functions of its JSON)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fedseed.bench.report import human_bytes, save_figure

COMMAND = "fedseed bench personalization"


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def method_table(scenario: dict[str, Any]) -> list[str]:
    """The per-method table of one scenario."""
    metric = scenario["metric"]
    lines = [f"| method | mean test {metric} | worst 10% | held-out mean | bytes down / client "
             "| bytes up / client | client steps | seconds |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for m in scenario["methods"]:
        lines.append(f"| {m['method']} | {_fmt(m['mean'])} | {_fmt(m['worst10'])} | "
                     f"{_fmt(m['held_out_mean'])} | {human_bytes(m['bytes_down_per_client'])} | "
                     f"{human_bytes(m['bytes_up_per_client'])} | {m['client_steps']:,.0f} | "
                     f"{m['seconds']:.0f} |")
    return lines


def _method(scenario: dict[str, Any], name: str) -> dict[str, Any]:
    return next(m for m in scenario["methods"] if m["method"] == name)


def targets(payload: dict[str, Any]) -> list[str]:
    """The issue's targets, each with the measured value and whether it was met."""
    lines = []
    head = next((s for s in payload["scenarios"] if s["headline"]), None)
    if head is not None:
        sign = 1 if head["higher_is_better"] else -1
        default, oracle = _method(head, "local-default"), _method(head, "local-oracle")
        best = _method(head, head["best_fedseed"])
        gain = sign * (best["mean"] - default["mean"]) * 100
        gap = sign * (oracle["mean"] - best["mean"]) * 100
        compute = best["client_steps"] / oracle["client_steps"]
        lines += [
            f"- **{head['scenario']}: best fedseed aggregator ({best['method']}) vs "
            f"local-default**: {gain:+.1f} points mean test {head['metric']} (target ≥ +5): "
            f"{'met' if gain >= 5 else 'missed'}.",
            f"- **… vs local-oracle**: {abs(gap):.1f} points {'below' if gap > 0 else 'above'} "
            f"it, at {compute:.2f}× its client "
            f"compute (target within 1 point at ≤ 0.20×): "
            f"{'met' if gap <= 1 and compute <= 0.2 else 'missed'}.",
        ]
        stt = head["steps_to_target"]
        ratio = stt.get("median_ratio_default_over_meta")
        lines.append(
            f"- **New clients (held out, {stt['users']})**: median steps to 95% of their "
            f"local-oracle validation {head['metric']}: {_fmt(stt['median_steps_meta'], 0)} "
            f"with the meta-recipe ({stt['reached_meta']}/{stt['users']} reach it) vs "
            f"{_fmt(stt['median_steps_default'], 0)} with the default "
            f"({stt['reached_default']}/{stt['users']}); median per-client ratio "
            f"{_fmt(ratio, 2)}× (target ≥ 2×): "
            f"{'met' if ratio is not None and ratio >= 2 else 'missed'}.")
        for label in ("fedavg", "fedavg+ft"):
            other = _method(head, label)
            diff = sign * (best["mean"] - other["mean"]) * 100
            fewer = other["bytes_up_per_client"] / max(1, best["bytes_up_per_client"])
            lines.append(f"- **vs {label}**: fedseed {'ahead' if diff >= 0 else 'behind'} by "
                         f"{abs(diff):.1f} points ({_fmt(best['mean'])} vs "
                         f"{_fmt(other['mean'])}), sending {fewer:,.0f}× fewer bytes up per "
                         "client.")
        for row in head.get("poisoning", []):
            drop = sign * (row["clean"] - row["robust"]) * 100
            lines.append(
                f"- **20% Byzantine, {row['aggregator']}**: robust {_fmt(row['robust'])} vs clean "
                f"{_fmt(row['clean'])} ({drop:+.1f} points; target within 2): "
                f"{'met' if drop <= 2 else 'missed'}"
                + (f"; without robust aggregation {_fmt(row['naive'])}." if "naive" in row
                   else "."))
    if head is not None and any(m["method"] == "fedseed-trajectory" for m in head["methods"]):
        shared, tuned = _method(head, "fedseed-trajectory"), _method(head, "fedseed-trajectory+ft")
        fedavg_ft = _method(head, "fedavg+ft")
        gap = sign * (fedavg_ft["mean"] - tuned["mean"]) * 100
        comm = (fedavg_ft["bytes_up_per_client"] + fedavg_ft["bytes_down_per_client"]) / max(
            1.0, tuned["bytes_up_per_client"] + tuned["bytes_down_per_client"])
        repeats = shared.get("repeat_means") or [shared["mean"]]
        each = ", ".join(_fmt(m) for m in repeats)
        lines += [
            f"- **Seed trajectory, {head['scenario']}: shared model** (replayed, no "
            f"fine-tuning) mean test {head['metric']} after {shared['rounds']} rounds, in "
            f"each of {len(repeats)} independent federation(s): {each} (target ≥ 0.90): "
            f"{'met' if min(repeats) >= 0.90 else 'missed'}.",
            f"- **… after fine-tuning**: {_fmt(tuned['mean'])} vs FedAvg + fine-tuning "
            f"{_fmt(fedavg_ft['mean'])} ({gap:+.1f} points behind; target within 2): "
            f"{'met' if gap <= 2 else 'missed'}.",
            f"- **… communication over the run**: FedAvg + FT / trajectory = {comm:,.1f}× "
            f"(target ≥ 10× for digits-mlp): {'met' if comm >= 10 else 'missed'}.",
        ]
    lines += many_users_targets(payload)
    lines += charlm_targets(payload)
    for row in payload["bytes_per_recipe"]:
        if row["recipe"].startswith("text-bert-tiny") and "trajectory_ratio" in row:
            lines.append(f"- **Seed-trajectory bytes per client per round, {row['recipe']}**, "
                         f"K = 1,024 and 800 seeds up: FedAvg / trajectory = "
                         f"{row['trajectory_ratio']:,.0f}×. The issue's text-bert-tiny target "
                         "(≥ 1000× over a run) is measured on real federations by `fedseed "
                         "bench trajectory` (results/trajectory.md).")
    for row in payload["bytes_per_recipe"]:
        if row["recipe"].startswith("text-bert-tiny"):
            lines.append(f"- **Bytes per client per round, {row['recipe']}** "
                         f"({row['parameters']:,} parameters): FedAvg / fedseed "
                         f"= {row['ratio']:,.0f}× (target ≥ 1000×): "
                         f"{'met' if row['ratio'] >= 1000 else 'missed'}.")
    return lines


#: Rows that end with each user's own model, fedseed's: the meta-recipe rows
#: (``fedseed-<aggregator>``) and the fine-tuned shared models.
_PERSONALISED = ("fedseed-trajectory+ft", "fedseed-first-order+ft")


def many_users_targets(payload: dict[str, Any]) -> list[str]:
    """The text issue's digits-at-100-users target: fedseed's best personalised mean
    (any method, trajectory ones included) ≥ FedAvg + fine-tuning's."""
    lines = []
    for s in payload["scenarios"]:
        if s["dataset"] != "digits" or s["clients"] < 100:
            continue
        sign = 1 if s["higher_is_better"] else -1
        mine = [m for m in s["methods"] if m["method"] in _PERSONALISED
                or (m["method"].startswith("fedseed-") and "meta_config" in m)]
        if not mine:
            continue
        best = max(mine, key=lambda m: sign * m["mean"])
        ft = _method(s, "fedavg+ft")
        diff = sign * (best["mean"] - ft["mean"]) * 100
        total = (ft["bytes_up_per_client"] + ft["bytes_down_per_client"]) / max(
            1.0, best["bytes_up_per_client"] + best["bytes_down_per_client"])
        lines.append(
            f"- **{s['scenario']}: fedseed's best personalised ({best['method']}, "
            f"{_fmt(best['mean'])}) ≥ FedAvg + fine-tuning ({_fmt(ft['mean'])})**: "
            f"{diff:+.1f} points, at {total:,.1f}× fewer bytes per client: "
            f"{'met' if diff >= 0 else 'missed'}.")
        if any(m["method"] == "fedseed-first-order" for m in s["methods"]):
            shared, fedavg = _method(s, "fedseed-first-order"), _method(s, "fedavg")
            fewer = (fedavg["bytes_up_per_client"] + fedavg["bytes_down_per_client"]) / max(
                1.0, shared["bytes_up_per_client"] + shared["bytes_down_per_client"])
            lines.append(
                f"- **… first-order shared model** (replayed, not fine-tuned): "
                f"{_fmt(shared['mean'])} vs FedAvg's shared model {_fmt(fedavg['mean'])}, "
                f"at {fewer:,.1f}× fewer bytes per client.")
    return lines


def schedule_lines(s: dict[str, Any]) -> list[str]:
    """One sentence on what FedAvg and first-order projection ran, and whether the two
    are like for like (same rounds, local steps and lr)."""
    sched = s.get("schedules")
    if not sched:
        return []
    fa = sched["fedavg"]
    text = (f"FedAvg ran {fa['rounds']} rounds × {fa['local_steps']} local steps at lr "
            f"{fa['lr']:g}")
    fo = sched.get("first-order")
    if fo:
        same = all(fo[k] == fa[k] for k in ("rounds", "local_steps", "lr"))
        text += (f"; first-order projection {fo['rounds']} rounds × {fo['local_steps']} "
                 f"local steps at lr {fo['lr']:g}, K {fo['projection_k']}: "
                 + ("the same schedule, like for like" if same else
                    "**not the same schedule**, so the two rows are not like for like"))
    return [text + ".", ""]


def charlm_targets(payload: dict[str, Any]) -> list[str]:
    """The text issue's char-LM target: fedseed's best personalised perplexity (any
    personalised fedseed row) ≤ FedAvg + fine-tuning's, at ≥ 100× fewer bytes."""
    lines = []
    for s in payload["scenarios"]:
        if s["dataset"] != "fortunes":
            continue
        mine = [m for m in s["methods"] if m["method"] in _PERSONALISED
                or (m["method"].startswith("fedseed-") and "meta_config" in m)]
        ft = next((m for m in s["methods"] if m["method"] == "fedavg+ft"), None)
        if not mine or ft is None:
            continue
        sign = 1 if s["higher_is_better"] else -1
        best = max(mine, key=lambda m: sign * m["mean"])

        def total(m: dict[str, Any]) -> float:
            return m["bytes_up_per_client"] + m["bytes_down_per_client"]

        fewer = total(ft) / max(1.0, total(best))
        as_good = sign * (best["mean"] - ft["mean"]) >= 0
        lines += [
            f"- **{s['scenario']} (char-LM): fedseed's best personalised {s['metric']} "
            f"({best['method']}, {_fmt(best['mean'])}) vs FedAvg + fine-tuning "
            f"({_fmt(ft['mean'])})**: {'met' if as_good else 'missed'}.",
            f"- **… at ≥ 100× fewer bytes per client over the run**: {fewer:,.1f}×: "
            f"{'met' if fewer >= 100 else 'missed'}."]
        first = next((m for m in s["methods"] if m["method"] == "fedseed-first-order+ft"),
                     None)
        if first is not None and first is not best:
            lines.append(f"- **… fedseed-first-order+ft**: {_fmt(first['mean'])} at "
                         f"{total(ft) / max(1.0, total(first)):,.1f}× fewer bytes.")
    return lines


def markdown(payload: dict[str, Any]) -> str:
    """docs/results/personalization.md."""
    m = payload["machine"]
    out = ["# Personalization benchmark: meta-recipes vs local training vs FedAvg", "",
           f"Written by `{COMMAND}` (config `{payload['config']}`) on {m['cores']} cores "
           f"({m['cpu']}), Python {m['python']}, torch {m['torch']}; the whole run took "
           f"{payload['seconds'] / 60:.1f} min. Every method of a scenario runs on the same "
           "partitions and seeds; every user is scored on its own test split; held-out users "
           "never join a federation. *client steps* = optimizer steps per user over the "
           "whole run (federation rounds, grid search and final personalization); bytes are "
           "per federated user over the whole run, counted from the messages that crossed.", "",
           "## Targets", "", *targets(payload), ""]
    for s in payload["scenarios"]:
        setting = (f"Dirichlet α = {s['alpha']}" if s["alpha"] is not None
                   else "one user per category")
        budget = f", every budget capped at {s['max_steps']} steps" if s["max_steps"] else ""
        out += [f"## {s['scenario']}: {s['recipe']} on {s['dataset']} ({setting}, "
                f"{s['clients']} users, {s['held_out']} held out{budget})", "",
                *method_table(s), "", *schedule_lines(s)]
        stt = s["steps_to_target"]
        out += [f"New users ({stt['users']} held out), steps to 95% of their local-oracle "
                f"validation {s['metric']}: {stt['method']} {_fmt(stt['median_steps_meta'], 0)}"
                f" (reached {stt['reached_meta']}), local-default "
                f"{_fmt(stt['median_steps_default'], 0)} (reached {stt['reached_default']}).", ""]
        configs = [f"{r['method']}: " + ", ".join(f"{k} {v:g}" if isinstance(v, float) else
                                                 f"{k} {v}" for k, v in r["meta_config"].items())
                   for r in s["methods"] if "meta_config" in r]
        if configs:
            out += ["Final meta-recipe configurations: " + "; ".join(configs) + ".", ""]
        if s.get("poisoning"):
            out += ["### 20% Byzantine users", "",
                    "Byzantine users reply with valid, signed, self-consistent client recipes "
                    "that claim a perfect result (and 100× their example count) for "
                    "configurations with a learning rate in the bottom quarter of the range "
                    "(too slow for the budget), and a terrible one otherwise. Quality = mean "
                    "test metric of the honest users personalising with the final "
                    "meta-recipe.", "",
                    "| aggregator | Byzantine users | clean | robust aggregation | "
                    "without robust aggregation |", "|---|---:|---:|---:|---:|"]
            for row in s["poisoning"]:
                naive = _fmt(row["naive"]) if "naive" in row else "not run"
                out.append(f"| {row['aggregator']} | {row['byzantine']} | {_fmt(row['clean'])} "
                           f"| {_fmt(row['robust'])} | {naive} |")
            out.append("")
        if s.get("warm_start"):
            w = s["warm_start"]
            on_t = w["steps_to_target_on"]
            out += ["### Adam second-moment warm start", "",
                    "| | mean test | worst 10% | median steps to target (new users) |",
                    "|---|---:|---:|---:|",
                    f"| {w['method']} | {_fmt(w['off']['mean'])} | {_fmt(w['off']['worst10'])} "
                    f"| {_fmt(stt['median_steps_meta'], 0)} |",
                    f"| {w['method']} + warm start | {_fmt(w['on']['mean'])} | "
                    f"{_fmt(w['on']['worst10'])} | {_fmt(on_t['median_steps_meta'], 0)} |", ""]
    out += ["## Bytes per client per round, by recipe", "",
            "fedseed: one signed meta-recipe down (a FedEx portfolio of 8 configurations) and "
            "one signed client recipe up (from a real 20-step run); FedAvg: the float32 weights "
            "each way, times the framing overhead measured in the runs above. Seed "
            "trajectory: a signed meta-recipe with 1,024 float32 coefficients down and a "
            "signed client recipe with 800 per-seed sums up. Recipes are counted packed, "
            "as the apps send them (docs/provenance.md).", "",
            "| recipe | parameters | meta-recipe | client recipe | fedseed / round | "
            "FedAvg / round | FedAvg ÷ fedseed | seed trajectory / round | FedAvg ÷ "
            "trajectory |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in payload["bytes_per_recipe"]:
        traj = row.get("trajectory_bytes_per_round")
        traj_cells = (f"{human_bytes(traj)} | {row['trajectory_ratio']:,.0f}×" if traj
                      else "– | –")
        out.append(f"| {row['recipe']} | {row['parameters']:,} | "
                   f"{human_bytes(row['meta_recipe_bytes'])} | "
                   f"{human_bytes(row['client_recipe_bytes'])} | "
                   f"{human_bytes(row['fedseed_bytes_per_round'])} | "
                   f"{human_bytes(row['fedavg_bytes_per_round'])} | {row['ratio']:,.0f}× | "
                   f"{traj_cells} |")
    out += ["", "![metric vs bytes](personalization.png)", "",
            "![learning curves](personalization_curves.png)", ""]
    return "\n".join(out)


def figures(payload: dict[str, Any], out: Path) -> list[Path]:
    """personalization.png (metric vs bytes per method) and personalization_curves.png
    (held-out users' mean validation curve, meta-recipe vs default)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = payload["scenarios"]
    n = len(scenarios)
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 4 * rows), squeeze=False)
    for ax, s in zip(axes.flat, scenarios, strict=False):
        for m in s["methods"]:
            total = m["bytes_down_per_client"] + m["bytes_up_per_client"]
            x = max(total, 1.0)
            ax.scatter([x], [m["mean"]], s=40)
            ax.annotate(m["method"], (x, m["mean"]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
        ax.set_xscale("log")
        if not s["higher_is_better"]:
            ax.set_yscale("log")
        ax.set_xlabel("bytes per client, whole run (local methods at 1)")
        ax.set_ylabel(f"mean test {s['metric']}")
        ax.set_title(s["scenario"], fontsize=9)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    paths = [save_figure(fig, out / "personalization.png")]
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 4 * rows), squeeze=False)
    for ax, s in zip(axes.flat, scenarios, strict=False):
        curves = s["curves"]
        for label, key in ((s["best_fedseed"] + " meta-recipe", "meta"),
                           ("default recipe", "default")):
            if curves[key]:
                steps, values = zip(*curves[key], strict=True)
                ax.plot(steps, values, marker="o", markersize=3, label=label)
        if curves.get("oracle_val_mean") is not None:
            ax.axhline(curves["oracle_val_mean"], color="grey", linestyle="--",
                       label="local-oracle (validation)")
        if not s["higher_is_better"]:
            ax.set_yscale("log")  # a perplexity starts in the hundreds, ends near 10
        ax.set_xlabel("optimizer steps")
        ax.set_ylabel(f"held-out users' mean validation {s['metric']}")
        ax.set_title(s["scenario"], fontsize=9)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    paths.append(save_figure(fig, out / "personalization_curves.png"))
    return paths
