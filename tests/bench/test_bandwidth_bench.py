"""``fedseed bench bandwidth``: the crossover arithmetic, and one real recipe end to
end (registry fetch, signature check, training, safetensors size)."""

from __future__ import annotations

import json

import pytest
from support import run_fedseed

from fedseed.bench.bandwidth import crossover_mbit, link_seconds, time_to_share


def test_link_seconds_and_the_crossover_agree():
    weights, recipe, local = 8_000_000, 1_000, 2.0
    cross = crossover_mbit(weights, recipe, local)
    assert cross == pytest.approx((weights - recipe) * 8 / 2e6)
    # At the crossover both ways take the same time; below it fedseed is faster.
    assert link_seconds(weights, cross) == pytest.approx(link_seconds(recipe, cross) + local)
    slow = cross / 2
    assert link_seconds(recipe, slow) + local < link_seconds(weights, slow)
    assert link_seconds(1_000_000, 1.0) == pytest.approx(8.0)


def test_no_crossover_when_the_recipe_is_not_smaller_than_the_weights():
    assert crossover_mbit(1_000, 2_000, 1.0) is None


def test_time_to_share_takes_the_first_point_at_95_percent_either_way():
    seconds = {10: 1.0, 20: 2.0, 30: 3.0}
    up = [(10, 0.5), (20, 0.94), (30, 0.98)]  # 0.95 x 0.98 = 0.931
    assert time_to_share(up, seconds, final=0.98, higher=True) == (20, 2.0)
    down = [(10, 9.0), (20, 5.5), (30, 5.0)]  # perplexity: 5.0 / 0.95 = 5.26
    assert time_to_share(down, seconds, final=5.0, higher=False) == (30, 3.0)
    assert time_to_share([(10, 0.1)], seconds, final=0.9, higher=True) is None


def test_the_bandwidth_bench_measures_a_real_recipe(tmp_path):
    done = run_fedseed("bench", "bandwidth", "--recipe", "digits-mlp", "--out", str(tmp_path),
                       env={"HF_HUB_OFFLINE": "1"})
    assert done.code == 0, done.err[-2000:]
    (row,) = json.loads((tmp_path / "bandwidth.json").read_text())["recipes"]
    # 9,610 float32 parameters, plus the safetensors header.
    assert 4 * 9_610 < row["weights_bytes"] < 4 * 9_610 + 2_000
    assert 0 < row["recipe_bytes"] < row["weights_bytes"]
    assert row["steps_to_target"] <= row["steps_full"]
    assert 0 < row["seconds_to_target"] <= row["seconds_full"]
    assert row["crossover_mbit"] == pytest.approx(crossover_mbit(
        row["weights_bytes"], row["recipe_bytes"],
        row["verify_seconds"] + row["seconds_to_target"]))
    assert [b["mbit"] for b in row["by_bandwidth"]] == [0.1, 0.5, 1.0, 10.0, 100.0]
    md = (tmp_path / "bandwidth.md").read_text()
    assert "**digits-mlp**: fedseed is faster below" in md and "roadmap's hope" in md
    assert (tmp_path / "bandwidth.png").stat().st_size > 5_000


def test_an_unknown_recipe_is_one_line_and_exit_2(tmp_path):
    done = run_fedseed("bench", "bandwidth", "--recipe", "resnet-9000", "--out", str(tmp_path))
    assert done.code == 2 and "resnet-9000" in done.err
    assert len(done.err.strip().splitlines()) == 1
    assert not (tmp_path / "bandwidth.json").exists()
