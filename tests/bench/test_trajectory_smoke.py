"""`fedseed bench trajectory` on a tiny case: the files it writes and what they say."""

from __future__ import annotations

import json

import pytest
from support import HANG_GUARD

pytestmark = pytest.mark.slow


def test_trajectory_bench_writes_replay_bit_exactness_and_memory(fedseed, tmp_path):
    out = tmp_path / "results"
    run = fedseed("bench", "trajectory", "--out", str(out), "--repeats", "1", "--recipe",
                  "digits-mlp", "--pool-size", "64", "--memory-recipe", "digits-mlp",
                  # The communication federations (FedAvg vs trajectory on the same users)
                  # are the rows the personalization bench and tests/app/test_simulate.py
                  # already run through the real apps; the smoke leaves them out.
                  "--no-communication", timeout=HANG_GUARD)
    assert run.code == 0, run.err[-3000:]
    data = json.loads((out / "trajectory.json").read_text())
    (case,) = data["replay"]
    assert case["recipe"] == "digits-mlp" and case["pool_size"] == 64 and case["seconds"] > 0
    assert data["bit_exact"]["identical"] is True
    mem = data["memory"]
    assert mem["zeroth_order"]["peak_mib"] > 0 and mem["first_order"]["peak_mib"] > 0
    assert case["packed_bytes"] < case["dsse_json_bytes"]
    assert data["communication"] is None
    assert (out / "trajectory.png").read_bytes()[:4] == b"\x89PNG"
    assert "Bit-exact across processes: **yes**" in (out / "trajectory.md").read_text()


def test_pool_size_out_of_range_is_bad_input(fedseed, tmp_path):
    run = fedseed("bench", "trajectory", "--out", str(tmp_path / "r"), "--pool-size", "5000")
    assert run.code == 2 and "--pool-size" in run.err
    assert not (tmp_path / "r").exists()
