"""Smoke test of the pretrained-base benchmark's inputs (the run itself is long)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from fedseed.bench.pretrained_base import CATEGORIES, PER_CATEGORY, fortunes_csv
from fedseed.data.fortunes import FORTUNES_DIR


@pytest.mark.skipif(not FORTUNES_DIR.is_dir(), reason="Debian fortunes not installed")
def test_fortunes_csv_has_ten_labelled_categories(tmp_path: Path):
    counts = fortunes_csv(tmp_path / "f.csv")
    with open(tmp_path / "f.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(counts) == CATEGORIES and len(rows) == sum(counts.values())
    assert {int(r["label"]) for r in rows} == set(range(CATEGORIES))
    assert max(counts.values()) <= PER_CATEGORY and all(r["text"] for r in rows)
