"""First-order seed projection through the real apps: ``fedseed simulate``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fedseed.provenance.envelope import Envelope
from fedseed.recipe.codec import parse_recipe, recipe_digest
from fedseed.recipe.trajectory import decode_values


@pytest.mark.slow
def test_first_order_mode_sends_coefficients_and_chains_the_meta_recipes(fedseed, tmp_path,
                                                                        monkeypatch):
    home = tmp_path / "sim"
    run = fedseed("simulate", "--clients", "2", "--rounds", "2", "--fraction", "1.0",
                  "--mode", "trajectory", "--trajectory-method", "first-order",
                  "--projection-k", "64", "--projection-dtype", "float16", "--max-steps", "5",
                  "--home", str(home))
    assert run.code == 0, run.err[-3000:]
    report = json.loads((home / "report.json").read_text())
    for r in report["rounds"]:
        assert r["accepted"] == 2 and r["array_records"] == 0  # no weights, either way
        assert r["bytes_up"] / 2 < 6_000  # 64 float16 coefficients, signed, plus evidence
    assert "test-metric-shared" in report["final"]
    monkeypatch.setenv("FEDSEED_HOME", str(home))
    metas = []
    for tag in ("round-1", "round-2"):
        out = tmp_path / f"{tag}.json"
        assert fedseed("recipe", "pull", f"digits-mlp-meta:{tag}", "-o", str(out),
                       "--registry", str(home / "registry")).code == 0
        metas.append(parse_recipe(Envelope.from_json(out.read_bytes()).payload))
    assert metas[1].projection.previous == recipe_digest(metas[0])  # a chain
    assert metas[1].projection.round == 2 and metas[1].lineage.method == "projection"
    assert metas[1].projection.dtype == "float16"  # the halves travel as the run asked
    assert np.count_nonzero(decode_values(metas[1].projection.coefficients, "float16")) > 0


@pytest.mark.parametrize(("args", "message"), [
    (["--trajectory-method", "first-order"], "trajectory settings, but --mode is 'recipes'"),
    (["--mode", "trajectory", "--trajectory-method", "first-order", "--pool-size", "64"],
     "pool-size only apply to trajectory-method zeroth-order"),
    (["--mode", "trajectory", "--projection-k", "64"],
     "projection-k only apply to trajectory-method first-order"),
    (["--mode", "trajectory", "--trajectory-method", "second-order"],
     "trajectory-method must be zeroth-order or first-order"),
])
def test_inconsistent_first_order_settings_are_one_line(fedseed, tmp_path, args, message):
    run = fedseed("simulate", "--clients", "2", *args, "--home", str(tmp_path / "sim"))
    assert run.code == 2, run.err
    assert message in run.err and len(run.err.strip().splitlines()) == 1, run.err
    assert not (tmp_path / "sim").exists()
