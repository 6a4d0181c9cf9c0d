"""The fortunes reader (strfile format, real files written here) and the Dirichlet
partition that keeps a floor when Flower Datasets gives up."""

from __future__ import annotations

import numpy as np
import pytest

from fedseed.data.builtin import load_builtin_dataset
from fedseed.data.fortunes import load_fortunes, read_fortune_file
from fedseed.data.partition import dirichlet_with_floor, partition
from fedseed.errors import DataError


def _write(folder, name, quotes):
    (folder / name).write_text("\n%\n".join(quotes) + "\n%\n")
    (folder / f"{name}.dat").write_bytes(b"\x00\x02binary index")


def test_reads_categories_as_users(tmp_path):
    _write(tmp_path, "computers", [f"quote {i}\n  -- someone" for i in range(30)])
    _write(tmp_path, "love", [f"love {i}" for i in range(25)])
    _write(tmp_path, "tiny", ["only one"])
    users = load_fortunes(tmp_path, min_quotes=20)
    assert sorted(users) == ["computers", "love"]  # .dat skipped, tiny too small
    assert len(users["computers"]) == 30
    assert users["computers"].texts[0] == "quote 0\n  -- someone"
    assert load_fortunes(tmp_path, min_quotes=20, max_users=1).keys() == {"computers"}


def test_percent_lines_split_quotes_and_blank_quotes_vanish(tmp_path):
    path = tmp_path / "f"
    path.write_text("a\nb\n%\n\n%\nc\n%\n")
    assert read_fortune_file(path) == ("a\nb", "c")


def test_missing_folder_says_how_to_install(tmp_path):
    with pytest.raises(DataError, match="apt-get install fortunes"):
        load_fortunes(tmp_path / "nope")


def test_dirichlet_floor_keeps_every_user_and_row():
    labels = np.repeat(np.arange(10), 50)
    users = dirichlet_with_floor(labels, 100, 0.1, 4, seed=0)
    assert min(len(u) for u in users) >= 4
    assert sorted(np.concatenate(users).tolist()) == list(range(500))
    # Still skewed: most users hold few classes.
    assert np.mean([len(set(labels[u].tolist())) for u in users]) < 4


def test_digits_alpha_point_one_at_100_users_partitions():
    parts = partition(load_builtin_dataset("digits"), 100, alpha=0.1, seed=0)
    assert len(parts) == 100 and min(len(p) for p in parts) >= 3
    assert sum(len(p) for p in parts) == 1797
