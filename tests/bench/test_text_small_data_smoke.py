"""The small-data text report (simulations/text_small_data.py): verdicts and files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "simulations"))

from text_small_data_report import render, write_report  # noqa: E402


def _results(ngram: float, bert: float, wall: float) -> dict:
    run = {"validation_accuracy": 0.5, "steps": 10, "command": "personalize x"}
    return {
        "data": {"rows": 3000, "per_category": 300, "categories": ["a", "b"]},
        "machine": {"cpus": 2, "python": "3.11"},
        "split": {"train": 2100, "validation": 450, "test": 450, "seed": 0},
        "fedseed": {"text-ngram": {**run, "test_accuracy": ngram, "wall_s": wall},
                    "text-bert-tiny": {**run, "test_accuracy": bert, "wall_s": 300.0}},
        "sklearn": {"tfidf_char_2_4_logreg": 0.55, "tfidf_word_1_2_logreg": 0.46},
    }


def test_report_states_each_target_as_met_or_missed(tmp_path):
    good = render(_results(ngram=0.56, bert=0.30, wall=60.0))
    bad = render(_results(ngram=0.50, bert=0.45, wall=130.0))

    assert good.count(": met") == 3 and "missed" not in good
    assert bad.count("**missed**") == 3
    write_report(_results(0.5, 0.3, 60.0), tmp_path)
    assert json.loads((tmp_path / "text_small_data.json").read_text())["split"]["test"] == 450
    assert (tmp_path / "text_small_data.png").read_bytes()[:4] == b"\x89PNG"
