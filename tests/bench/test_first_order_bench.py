"""Smoke test of ``fedseed bench trajectory --first-order`` (tiny: 2 users, 2 rounds)."""

from __future__ import annotations

import json

from fedseed.bench import first_order as fo


def test_first_order_bench_writes_results_with_targets_and_catch_up(tmp_path):
    settings = fo.FirstOrderSettings(users=2, rounds=2, local_steps=3, k=32, fedavg=False)
    done = fo.run(tmp_path, settings)
    payload = json.loads((tmp_path / "trajectory_first_order.json").read_text())
    assert (tmp_path / "trajectory_first_order.png").stat().st_size > 0
    first = payload["first_order"]
    assert len(first["history"]) == 2 and first["bytes_up_per_client"] > 0
    assert first["catch_up"]["new_device"]["rounds"] == 2
    assert first["catch_up"]["new_device"]["fetched_bytes"] > 0
    assert first["catch_up"]["missed_half"]["rounds"] == 1
    assert done["targets"][0]["met"] == (first["final_shared_accuracy"] >= 0.96)
    assert "missed" in (tmp_path / "trajectory_first_order.md").read_text() or \
        done["targets"][0]["met"]
