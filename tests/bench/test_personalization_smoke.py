"""`fedseed bench personalization` end to end on a tiny configuration: every method,
the poisoning run, and the files it must write (real Flower
simulations, real training, real signatures)."""

from __future__ import annotations

import json

import pytest
from support import ASSETS, HANG_GUARD

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    import os
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("results")
    done = subprocess.run(
        [sys.executable, "-m", "fedseed", "bench", "personalization",
         "--config", str(ASSETS / "bench-tiny.toml"), "--out", str(out)],
        capture_output=True, text=True, timeout=HANG_GUARD,
        env={**os.environ, "FEDSEED_HOME": str(out / "home")})
    assert done.returncode == 0, done.stderr[-3000:]
    return out, done.stdout


def test_writes_json_markdown_and_plots(smoke):
    out, stdout = smoke
    for name in ("personalization.json", "personalization.md", "personalization.png",
                 "personalization_curves.png"):
        assert (out / name).stat().st_size > 500, name
    assert (out / "personalization.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "smoke" in stdout


def test_every_method_is_measured_side_by_side(smoke):
    out, _ = smoke
    data = json.loads((out / "personalization.json").read_text())
    scenario = data["scenarios"][0]
    methods = {m["method"]: m for m in scenario["methods"]}
    assert set(methods) == {"local-default", "local-oracle", "fedseed-fedex", "fedavg",
                            "fedavg+ft", "fedseed-trajectory", "fedseed-trajectory+ft"}
    traj = methods["fedseed-trajectory"]
    assert 0 < traj["bytes_up_per_client"] < fedavg_bytes(methods)
    assert traj["pool_size"] == 64
    assert traj["repeat_means"] == [traj["mean"]]  # one federation, scored
    for m in methods.values():
        assert 0.0 <= m["mean"] <= 1.0 and 0.0 <= m["worst10"] <= m["mean"] + 1e-9
    # Local methods send nothing; fedseed sends recipes, FedAvg sends weights.
    assert methods["local-default"]["bytes_up_per_client"] == 0
    fedseed, fedavg = methods["fedseed-fedex"], methods["fedavg"]
    assert 0 < fedseed["bytes_up_per_client"] < fedavg["bytes_up_per_client"]
    # FedAvg's uplink is at least the float32 weights of digits-mlp, once.
    assert fedavg["bytes_up_per_client"] >= 4 * 9_610
    # The oracle tried the whole grid: more compute than the default.
    assert methods["local-oracle"]["client_steps"] > methods["local-default"]["client_steps"]
    assert methods["fedseed-fedex"]["meta_config"]["budget.max_steps"] <= 20


def fedavg_bytes(methods):
    return methods["fedavg"]["bytes_up_per_client"]


def test_poisoning_and_bytes_tables(smoke):
    out, _ = smoke
    data = json.loads((out / "personalization.json").read_text())
    scenario = data["scenarios"][0]
    (row,) = scenario["poisoning"]
    assert row["byzantine"] == 1 and {"clean", "robust"} <= set(row)
    assert "naive" not in row and "warm_start" not in scenario  # not asked for
    recipes = {r["recipe"]: r for r in data["bytes_per_recipe"]}
    assert recipes["text-bert-tiny"]["ratio"] > 100
    assert recipes["text-bert-tiny"]["trajectory_ratio"] > 100
    assert recipes["text-bert-tiny, WordPiece vocabulary"]["parameters"] == 4_386_178
    md = (out / "personalization.md").read_text()
    assert "## Targets" in md and "20% Byzantine" in md and "fedavg+ft" in md


def test_bad_config_is_one_line_and_exit_2(fedseed, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[scenario]]\nname = "x"\ndataset = "digits"\nrecipe = "digits-mlp"\n'
                   'clinets = 4\n')
    result = fedseed("bench", "personalization", "--config", str(bad), "--out",
                     str(tmp_path / "out"))
    assert result.code == 2
    assert "unknown key 'clinets'" in result.err and len(result.err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
