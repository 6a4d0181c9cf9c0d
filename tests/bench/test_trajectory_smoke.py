"""`fedseed bench trajectory` on a tiny case: the files it writes and what they say."""

from __future__ import annotations

import json

import pytest
from support import HANG_GUARD

pytestmark = pytest.mark.slow


def test_trajectory_bench_writes_replay_bit_exactness_memory_and_bytes(fedseed, tmp_path):
    out = tmp_path / "results"
    run = fedseed("bench", "trajectory", "--out", str(out), "--repeats", "1", "--recipe",
                  "digits-mlp", "--pool-size", "64", "--memory-recipe", "digits-mlp",
                  "--run-recipe", "digits-mlp", "--run-clients", "2", "--run-rounds", "1",
                  timeout=HANG_GUARD)
    assert run.code == 0, run.err[-3000:]
    data = json.loads((out / "trajectory.json").read_text())
    (case,) = data["replay"]
    assert case["recipe"] == "digits-mlp" and case["pool_size"] == 64 and case["seconds"] > 0
    assert data["bit_exact"]["identical"] is True
    mem = data["memory"]
    assert mem["zeroth_order"]["peak_mib"] > 0 and mem["first_order"]["peak_mib"] > 0
    assert case["packed_bytes"] < case["dsse_json_bytes"]
    comm = data["communication"]
    # Two real federations on the same users: FedAvg moves the 9,610 float32 weights
    # both ways, the trajectory a 512-seed recipe; both models were scored.
    assert comm["fedavg"]["bytes_per_client"] > 2 * 4 * 9_610
    assert 0 < comm["trajectory"]["bytes_per_client"] < comm["fedavg"]["bytes_per_client"]
    assert comm["ratio"] > 1 and 0 <= comm["trajectory"]["accuracy"] <= 1
    assert (out / "trajectory.png").read_bytes()[:4] == b"\x89PNG"
    assert "Bit-exact across processes: **yes**" in (out / "trajectory.md").read_text()


def test_pool_size_out_of_range_is_bad_input(fedseed, tmp_path):
    run = fedseed("bench", "trajectory", "--out", str(tmp_path / "r"), "--pool-size", "5000")
    assert run.code == 2 and "--pool-size" in run.err
    assert not (tmp_path / "r").exists()
