"""Small-data text classification on Debian's fortunes: text-ngram vs byte-level
BERT-tiny vs scikit-learn TF-IDF + logistic regression, on one split.

The data: the 10 largest fortunes categories, 300 quotes each (3,000 rows), written
as a CSV with columns ``text`` and ``label`` (the category's integer id). Both fedseed
recipes are derived with ``task.num_labels`` 10 and run by the real CLI
(``fedseed personalize RECIPE --data rows.csv``), timed from the outside. The
scikit-learn baselines train on exactly the rows fedseed trains on (the recipe's
train split; the validation rows are left out, as fedseed uses them only for early
stopping) and are scored on the same test rows.

Run from the repository root::

    .venv/bin/python simulations/text_small_data.py            # writes docs/results/
    .venv/bin/python simulations/text_small_data.py --quick    # a smoke run, 300 rows
    .venv/bin/python simulations/text_small_data.py --reuse text-bert-tiny

``--reuse NAME`` takes NAME's result from the existing ``text_small_data.json`` when
it was measured with the same derived recipe (same digest) on the same rows, and
records that it was reused.

Needs ``apt-get install fortunes``. Absolute times depend on the machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from fedseed.data.examples import Examples, split_examples
from fedseed.data.fortunes import load_fortunes
from fedseed.recipe.builtin import load_builtin
from fedseed.recipe.codec import canonical_dict, canonical_json, read_recipe_file, recipe_digest

ROOT = Path(__file__).resolve().parent.parent
CATEGORIES, PER_CATEGORY = 10, 300
RECIPES = ("text-ngram", "text-bert-tiny")


def build_rows(per_category: int, seed: int = 0) -> tuple[list[str], list[str], list[int]]:
    """The categories (largest first, then by name), texts and integer labels."""
    users = load_fortunes(max_users=CATEGORIES)
    names = sorted(users, key=lambda n: (-len(users[n]), n))
    rng = np.random.default_rng(seed)
    texts: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(names):
        quotes = users[name].texts
        for i in rng.permutation(len(quotes))[:per_category]:
            texts.append(quotes[i])
            labels.append(label)
    order = rng.permutation(len(texts))
    return names, [texts[i] for i in order], [labels[i] for i in order]


def write_csv(path: Path, texts: list[str], labels: list[int]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(zip(texts, labels, strict=True))


def derived_recipe(name: str, folder: Path, num_labels: int, max_steps: int | None) -> Path:
    data = canonical_dict(load_builtin(name))
    data["task"]["num_labels"] = num_labels
    data["name"] = f"{name}-{num_labels}"
    if max_steps is not None:
        data["budget"]["max_steps"] = max_steps
    path = folder / f"{data['name']}.json"
    path.write_bytes(canonical_json(data))
    read_recipe_file(path)  # valid, or fail here
    return path


def run_personalize(recipe: Path, data: Path, out: Path) -> dict[str, float | int | str]:
    command = [str(ROOT / ".venv/bin/fedseed"), "personalize", str(recipe), "--data", str(data),
               "--out", str(out), "--quiet"]
    start = time.perf_counter()
    subprocess.run(command, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    wall = time.perf_counter() - start
    child = read_recipe_file(out / "recipe.json")
    evidence = child.evidence
    assert evidence is not None
    return {"test_accuracy": float(evidence.final.test_metric or 0.0),
            "validation_accuracy": float(evidence.final.val_metric),
            "steps": int(evidence.curve[-1].step) if evidence.curve else 0,
            "wall_s": round(wall, 2), "command": " ".join(command[1:])}


def sklearn_baselines(train: Examples, test: Examples) -> dict[str, float]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    assert train.texts is not None and test.texts is not None
    y_train, y_test = train.labels, test.labels
    vectorizers = {
        "tfidf_char_2_4_logreg": lambda: TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4),
                                                         sublinear_tf=True, min_df=2),
        "tfidf_word_1_2_logreg": lambda: TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
        "tfidf_char_word_logreg": lambda: make_union(
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True, min_df=2),
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)),
    }
    scores = {}
    for name, make in vectorizers.items():
        model = make_pipeline(make(), LogisticRegression(C=10.0, max_iter=2000))
        model.fit(list(train.texts), y_train)
        scores[name] = float((model.predict(list(test.texts)) == y_test).mean())
    return scores


def _previous(folder: Path, name: str, digest: str, rows: int) -> dict[str, object] | None:
    path = folder / "text_small_data.json"
    if not path.is_file():
        return None
    old = json.loads(path.read_text())
    entry = old.get("fedseed", {}).get(name)
    if entry is None or entry.get("recipe_digest") != digest or old["data"]["rows"] != rows:
        print(f"{name}: no reusable result in {path}; running it", flush=True)
        return None
    return dict(entry)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30 rows per category, 30 steps")
    parser.add_argument("--out", type=Path, default=ROOT / "docs/results")
    parser.add_argument("--reuse", action="append", default=[], choices=RECIPES,
                        help="reuse this recipe's result from --out if its digest matches")
    args = parser.parse_args(argv)
    per_category = 30 if args.quick else PER_CATEGORY
    max_steps = 30 if args.quick else None

    names, texts, labels = build_rows(per_category)
    results: dict[str, object] = {
        "data": {"source": "Debian fortunes (/usr/share/games/fortunes)",
                 "categories": names, "rows": len(texts), "per_category": per_category},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_1min_at_start": round(os.getloadavg()[0], 1)},
    }
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        data = tmp / "fortunes10.csv"
        write_csv(data, texts, labels)
        fedseed: dict[str, object] = {}
        for name in RECIPES:
            recipe_path = derived_recipe(name, tmp, CATEGORIES, max_steps)
            digest = recipe_digest(read_recipe_file(recipe_path))
            previous = _previous(args.out, name, digest, len(texts)) if name in args.reuse else None
            if previous is not None:
                fedseed[name] = {**previous, "reused": True}
            else:
                fedseed[name] = {**run_personalize(recipe_path, data, tmp / f"out-{name}"),
                                 "recipe_digest": digest}
            print(name, fedseed[name], flush=True)
        recipe = read_recipe_file(recipe_path)
    examples = Examples(source="fortunes10", texts=tuple(texts), labels=np.asarray(labels))
    splits = split_examples(examples, recipe.split)
    results["split"] = {"train": len(splits.train), "validation": len(splits.validation),
                        "test": len(splits.test), "seed": recipe.split.seed}
    results["fedseed"] = fedseed
    results["machine"]["load_average_1min_at_end"] = round(os.getloadavg()[0], 1)  # type: ignore[index]
    results["sklearn"] = sklearn_baselines(splits.train, splits.test)
    print(results["sklearn"], flush=True)
    if not args.quick:
        from text_small_data_report import write_report

        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "text_small_data.json").write_text(json.dumps(results, indent=1) + "\n")
        write_report(results, args.out)
    else:
        print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
