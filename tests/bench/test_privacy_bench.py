"""``fedseed bench privacy`` end to end on a tiny scenario (real Flower simulations:
fedseed's apps and Flower's own DP FedAvg), and its target arithmetic."""

from __future__ import annotations

import json

import pytest
from support import run_fedseed

from fedseed.bench.privacy import load_privacy_config, targets
from fedseed.errors import FedseedError

# One private epsilon: the no-DP rows run the personalization bench's own code paths,
# tested there; three Flower federations keep this under a minute.
SMOKE = """
[run]
epsilons = [8.0]
workers = 1
[[scenario]]
name = "digits"
dataset = "digits"
recipe = "digits-mlp"
clients = 6
held_out = 0.34
rounds = 1
max_steps = 10
fo_rounds = 2
fo_local_steps = 3
projection_k = 16
fedavg_rounds = 2
fedavg_local_steps = 3
"""


@pytest.mark.slow
def test_every_method_runs_at_every_epsilon_and_flower_accounts_the_same(tmp_path):
    (tmp_path / "p.toml").write_text(SMOKE)
    done = run_fedseed("bench", "privacy", "--config", str(tmp_path / "p.toml"), "--out",
                       str(tmp_path / "out"), env={"HF_HUB_OFFLINE": "1"})
    assert done.code == 0, done.err[-3000:]
    payload = json.loads((tmp_path / "out" / "privacy.json").read_text())
    (s,) = payload["scenarios"]
    assert s["federated"] == 4 and s["delta"] == pytest.approx(0.25)
    assert s["clips"]["trajectory"] > 0 and s["clips"]["flower-dp-fedavg"] > 0
    rows = {(r["method"], r["epsilon"]): r for r in s["rows"]}
    assert set(rows) == {(m, 8.0) for m in ("recipes", "trajectory", "flower-dp-fedavg")}
    for r in rows.values():
        assert 0.0 <= r["mean"] <= 1.0
        assert 0 < r["epsilon_spent"] <= 8.0 + 1e-6 and r["noise_multiplier"] > 0
    # FedAvg and the trajectory run the same number of rounds: the same calibrated
    # noise, and Flower's accountant reports what fedseed's does.
    fo, flower = rows[("trajectory", 8.0)], rows[("flower-dp-fedavg", 8.0)]
    assert fo["noise_multiplier"] == pytest.approx(flower["noise_multiplier"])
    assert fo["epsilon_spent"] == pytest.approx(flower["epsilon_spent"], rel=1e-6)
    assert rows[("recipes", 8.0)]["bytes_per_client"] < flower["bytes_per_client"] / 10
    assert payload["targets"] == []  # no no-DP rows to compare with
    md = (tmp_path / "out" / "privacy.md").read_text()
    assert "## Targets (epsilon = 8)" in md and "Flower DP FedAvg" in md
    assert (tmp_path / "out" / "privacy.png").stat().st_size > 5_000


def test_targets_compare_against_no_dp_and_flower():
    def row(method, eps, mean):
        return {"method": method, "epsilon": eps, "mean": mean}

    scenario = {"name": "x", "rows": [row("recipes", None, 0.90), row("recipes", 8.0, 0.895),
                                      row("trajectory", None, 0.90),
                                      row("trajectory", 8.0, 0.85),
                                      row("flower-dp-fedavg", 8.0, 0.86)]}
    (recipes, trajectory) = targets(scenario)
    assert recipes["met"] and recipes["beats_flower"]
    assert recipes["points_lost"] == pytest.approx(0.5)
    assert not trajectory["met"] and not trajectory["beats_flower"]


def test_config_keys_are_checked(tmp_path):
    (tmp_path / "bad.toml").write_text("[run]\nepsilon = [1]\n[[scenario]]\nname='a'\n"
                                       "dataset='digits'\nrecipe='digits-mlp'\n")
    with pytest.raises(FedseedError, match="unknown key 'epsilon'"):
        load_privacy_config(tmp_path / "bad.toml")
    (tmp_path / "neg.toml").write_text("[run]\nepsilons = [-1]\n")
    with pytest.raises(FedseedError, match="must be positive"):
        load_privacy_config(tmp_path / "neg.toml")
