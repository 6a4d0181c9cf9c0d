"""Smoke test of the pretrained-base benchmark's inputs (the run itself is long)."""

from __future__ import annotations

import csv
from pathlib import Path

from fedseed.bench.pretrained_base import CATEGORIES, PER_CATEGORY, fortunes_csv


def test_fortunes_csv_has_ten_labelled_categories(tmp_path: Path):
    # A fortunes folder in Debian's format (quotes split by "%" lines), 12 categories
    # of different sizes, some larger than the per-category cap: CI has no fortunes.
    folder = tmp_path / "fortunes"
    folder.mkdir()
    for c in range(12):
        quotes = [f"category {c} quote {i}" for i in range(25 + 40 * c)]
        (folder / f"cat{c}").write_text("\n%\n".join(quotes) + "\n%\n", encoding="utf-8")
    counts = fortunes_csv(tmp_path / "f.csv", folder)
    with open(tmp_path / "f.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(counts) == CATEGORIES and len(rows) == sum(counts.values())
    assert "cat0" not in counts and "cat1" not in counts  # the two smallest are left out
    assert {int(r["label"]) for r in rows} == set(range(CATEGORIES))
    assert max(counts.values()) <= PER_CATEGORY and all(r["text"] for r in rows)
