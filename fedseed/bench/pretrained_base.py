"""Benchmark: does a base pretrained offline on public-domain English help
``fedseed personalize`` on real text?

The base is ``text-bert-tiny`` pretrained (masked LM) on the King James Bible that
Debian's ``bible-kjv`` package ships (exported with its ``bible`` program), never on
the text evaluated. The task is 10-way classification of Debian ``fortunes`` quotes
by category (the 10 largest categories, at most 300 quotes each). The same derived
recipe (``num_labels`` 10) is personalised from scratch and from the base, on the
same CSV and split.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from fedseed._internal.atomic import atomic_write_bytes
from fedseed.bases import BaseStore, pretrained_base
from fedseed.bench.report import machine, save_figure, write_results
from fedseed.data.fortunes import FORTUNES_DIR, load_fortunes
from fedseed.errors import DataError
from fedseed.home import fedseed_home
from fedseed.personalize import personalize
from fedseed.recipe import load_builtin
from fedseed.recipe.codec import canonical_dict, recipe_from_dict

STEM = "pretrained_base"
KJV_RANGE = "gen1:1-rev22:21"
CATEGORIES = 10
PER_CATEGORY = 300


def kjv_corpus(path: Path) -> Path:
    """The King James Bible as plain text, one verse a line (exported once)."""
    if path.is_file():
        return path
    program = shutil.which("bible")
    if program is None:
        raise DataError("the `bible` program is missing; install Debian's bible-kjv "
                        "package (`make bench-setup` does)")
    text = subprocess.run([program, "-f", KJV_RANGE], capture_output=True, text=True,
                          check=True, timeout=600).stdout
    verses = [line.split(" ", 1)[1] for line in text.splitlines() if " " in line]

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, ("\n".join(verses) + "\n").encode("utf-8"))
    return path


def fortunes_csv(path: Path, directory: Path | None = None) -> dict[str, int]:
    """Write the 10-category fortunes CSV (text, label) from ``directory`` (Debian's
    fortunes by default); return rows per category."""
    users = load_fortunes(directory or FORTUNES_DIR, max_users=CATEGORIES)
    counts = {}
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for label, name in enumerate(sorted(users)):
            quotes = users[name].texts
            assert quotes is not None  # load_fortunes gives text examples
            texts = quotes[:PER_CATEGORY]
            counts[name] = len(texts)
            for text in texts:
                writer.writerow([text, label])
    return counts


def run(out: Path, seconds: float, corpus_path: Path | None = None) -> dict[str, Any]:
    """Pretrain (or reuse) the base, personalise from scratch and from it, report."""
    recipe = load_builtin("text-bert-tiny")
    corpus = kjv_corpus(corpus_path or fedseed_home() / "corpora" / "kjv.txt")
    digest = pretrained_base(recipe, [corpus], seconds)
    produced = dict(BaseStore.default().resolve(digest).info["produced_by"])
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "fortunes10.csv"
        counts = fortunes_csv(data)
        for name, base in (("scratch", None), ("base", digest)):
            spec = canonical_dict(recipe)
            spec["name"] = "text-bert-tiny-fortunes10"
            spec["task"]["num_labels"] = CATEGORIES
            if base is not None:
                spec["init"]["base"] = base
            done = personalize(recipe_from_dict(spec), str(data), Path(tmp) / name)
            ev = done.recipe.evidence
            assert ev is not None
            runs[name] = {"test_accuracy": ev.final.test_metric,
                          "val_accuracy": ev.final.val_metric, "steps": ev.steps,
                          "stopped_early": ev.stopped_early,
                          "wall_seconds": round(ev.wall_seconds, 1),
                          "curve": [[p.step, p.val_metric] for p in ev.curve]}
    payload = {"base": digest, "pretraining": produced, "task": {
        "categories": counts, "rows": sum(counts.values()),
        "chance": 1 / CATEGORIES}, "personalize": runs, "machine": machine()}
    write_results(out, STEM, payload, _markdown(payload))
    _figure(payload, out / f"{STEM}.png")
    return payload


def _markdown(p: dict[str, Any]) -> str:
    pre, runs = p["pretraining"], p["personalize"]
    s, b = runs["scratch"], runs["base"]
    gain = b["test_accuracy"] - s["test_accuracy"]
    verdict = (f"The base helps: +{gain:.3f} test accuracy." if gain > 0.02 else
               f"The base does not help measurably ({gain:+.3f} test accuracy).")
    seen = pre["steps"] * pre["settings"]["batch_size"] * 127 / sum(
        c["bytes"] for c in pre["corpus"])
    curve = ", ".join(f"{step}: {loss:.3f}" for step, loss in pre["curve"][:: max(1, len(
        pre["curve"]) // 12)])
    return f"""# Pretrained base: text-bert-tiny on the King James Bible, then fortunes

Command: `fedseed bench pretrained-base --seconds {pre["settings"]["max_seconds"]:.0f}`
(needs Debian `bible-kjv` and `fortunes`: `make bench-setup`).

## Pretraining (masked LM, offline)
- Corpus: {", ".join(f"{c['name']} ({c['bytes']:,} bytes, sha256 {c['sha256'][:12]})"
                     for c in pre["corpus"])}, from Debian `bible-kjv`.
- {pre["steps"]} steps of batch {pre["settings"]["batch_size"]} in {pre["seconds"]:.0f} s
  (wall-clock budget {pre["settings"]["max_seconds"]:.0f} s, lr {pre["settings"]["lr"]}).
- MLM loss: final {pre["final_loss"]:.3f} (mean of the last 50 steps), held-out
  {pre["val_loss"]:.3f}; a uniform guess over 256 bytes is 5.545.
- Loss curve (step: mean loss): {curve}.
- Base: `{p["base"]}`.

## Personalising a 10-category fortunes task
{p["task"]["rows"]} quotes from the {len(p["task"]["categories"])} largest Debian fortunes
categories (at most {PER_CATEGORY} each), the recipe's 70/15/15 split, the same
text-bert-tiny recipe with `num_labels` 10 (chance {p["task"]["chance"]:.2f}); only
`init.base` differs.

| start | test accuracy | val accuracy | steps | seconds |
|---|---|---|---|---|
{_row("scratch", s)}
{_row("base", b)}

{verdict} The base saw {pre["steps"] * pre["settings"]["batch_size"]:,} windows of 127
bytes, about {seen:.0%} of the corpus once, and ended at a held-out masked-byte loss of
{pre["val_loss"]:.2f} nats (uniform: 5.545). A longer `--seconds` (a new cached base) is the
first thing to try.

Machine: {p["machine"]}. Times depend on the machine and on what else runs on it.
"""


def _row(name: str, r: dict[str, Any]) -> str:
    return (f"| {name} | {r['test_accuracy']:.3f} | {r['val_accuracy']:.3f} | {r['steps']} "
            f"| {r['wall_seconds']} |")


def _figure(p: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    curve = p["pretraining"]["curve"]
    left.plot([c[0] for c in curve], [c[1] for c in curve])
    left.set(title="MLM pretraining on the KJV Bible", xlabel="step", ylabel="loss")
    for name, run_ in p["personalize"].items():
        right.plot([c[0] for c in run_["curve"]], [c[1] for c in run_["curve"]],
                   marker="o", label=f"from {name} (test {run_['test_accuracy']:.3f})")
    right.axhline(p["task"]["chance"], color="grey", linestyle=":", label="chance")
    right.set(title="fortunes, 10 categories", xlabel="step", ylabel="val accuracy")
    right.legend()
    save_figure(fig, path)


__all__ = ["fortunes_csv", "kjv_corpus", "run"]
