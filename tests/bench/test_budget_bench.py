"""``fedseed bench budget`` end to end on a tiny digits grid (every start, real
federations), and its pieces: the cut, the nested draws, the claim's verdict and
the configuration's refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
from support import run_fedseed

from fedseed.bench.budget import Task, claim_verdict, cut, draws, load_budget_config
from fedseed.data.builtin import load_builtin_dataset
from fedseed.errors import FedseedError

SMOKE = """
[run]
seed = 0
workers = 1
parallel = 2

[[task]]
name = "digits"
dataset = "digits"
recipe = "digits-mlp"
samples = [10, 200]
steps = [1, 60]
repeats = 2
test_rows = 200
val_rows = 50
pool_rows = 300
federation_clients = 3
federation_rows = 240
federation_rounds = 1
federation_max_steps = 20
fo_rounds = 1
fo_local_steps = 5
fo_lr = 0.01
projection_k = 64
"""


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    root = tmp_path_factory.mktemp("budget")
    (root / "budget.toml").write_text(SMOKE)
    done = run_fedseed("bench", "budget", "--config", str(root / "budget.toml"),
                       "--out", str(root / "out"), env={"HF_HUB_OFFLINE": "1"})
    assert done.code == 0, done.err[-2000:]
    return root / "out", done


@pytest.mark.slow
def test_the_budget_bench_writes_every_start_s_heat_map_and_the_claim(smoke):
    out, done = smoke
    payload = json.loads((out / "budget.json").read_text())
    (task,) = payload["tasks"]
    assert [m["start"] for m in task["maps"]] == ["default", "meta", "shared"]
    assert task["rows"] == {"test": 200, "validation": 50, "pool": 300, "federation": 240,
                            "federation_users": 3}
    # 300 rows and the recipe's own 200 steps: digits-mlp is far above chance (0.1).
    assert task["reference"]["accuracy"] > 0.5 and task["reference"]["steps"] >= 20
    for m in task["maps"]:
        assert len(m["cells"]) == 4
        for c in m["cells"]:
            assert len(c["accuracies"]) == 2
            assert c["share"] == pytest.approx(c["accuracy"] / task["reference"]["accuracy"])
    default = {(c["samples"], c["steps"]): c["share"] for c in task["maps"][0]["cells"]}
    assert default[200, 60] > default[10, 1]  # more rows and steps learn more
    assert task["maps"][1]["details"]["meta_bytes"] > 0
    assert task["maps"][2]["details"]["bytes_per_client"] > 0
    assert set(task["claim"]) == {"default", "meta", "shared"}
    md = (out / "budget.md").read_text()
    assert "< 100 samples and < 100 steps reach 95%" in md
    for start in ("built-in recipe", "meta-recipe", "first-order shared model"):
        assert start in md
    assert (out / "budget.png").stat().st_size > 10_000
    assert "reference" in done.out and "wrote" in done.out


def _cells(shares: dict[tuple[int, int], float]) -> list[dict]:
    return [{"samples": n, "steps": s, "share": v} for (n, s), v in shares.items()]


def test_the_claim_holds_only_for_a_cell_under_both_limits():
    task = Task(name="t", dataset="digits", recipe="digits-mlp")
    maps = [{"start": "default", "cells": _cells({(50, 30): 0.96, (500, 300): 1.0})},
            {"start": "meta", "cells": _cells({(50, 30): 0.90, (100, 30): 0.99,
                                              (50, 100): 0.97})}]
    verdict = claim_verdict(task, maps)

    assert verdict["default"]["holds"] and verdict["default"]["cells_reaching"] == [(50, 30)]
    # 100 samples or 100 steps are not "fewer than 100".
    assert not verdict["meta"]["holds"]
    assert verdict["meta"]["best_under"] == {"samples": 50, "steps": 30, "share": 0.90}
    assert verdict["meta"]["smallest_reaching"]["samples"] == 100


def test_draws_are_nested_and_the_same_for_every_caller():
    a = draws(300, [10, 200], repeats=2, seed=0)
    b = draws(300, [10, 200], repeats=2, seed=0)
    for r in range(2):
        assert np.array_equal(a[10][r], a[200][r][:10])
        assert np.array_equal(a[200][r], b[200][r])
        assert len(set(a[200][r].tolist())) == 200
    assert not np.array_equal(a[200][0], a[200][1])


def test_the_cut_keeps_test_validation_pool_and_federation_apart():
    task = Task(name="t", dataset="digits", recipe="digits-mlp", test_rows=300, val_rows=100,
                pool_rows=600, federation_rows=500)
    examples = load_builtin_dataset("digits")
    data = cut(examples, task, seed=0)

    sizes = [len(data.test), len(data.validation), len(data.pool), len(data.federation)]
    assert sizes == [300, 100, 600, 500]
    rows = {part: {r.tobytes() for r in getattr(data, part).features}
            for part in ("test", "validation", "pool", "federation")}
    assert not rows["test"] & rows["pool"] and not rows["validation"] & rows["pool"]


def test_too_little_data_names_the_task_and_the_counts():
    task = Task(name="tiny", dataset="digits", recipe="digits-mlp", samples=(10,),
                test_rows=1000, val_rows=500, pool_rows=500)
    with pytest.raises(FedseedError, match="budget task 'tiny'.*1797 rows.*2000"):
        cut(load_builtin_dataset("digits"), task, seed=0)


@pytest.mark.parametrize(("extra", "message"), [
    ("starts = ['default', 'oracle']", "starts .*oracle.* must be among default, meta, shared"),
    ("samples = [10, 900]\npool_rows = 600", "pool_rows 600 is smaller than the largest "
                                            "sample count 900"),
    ("colour = 'blue'", "colour"),
])
def test_a_bad_task_is_refused_with_the_field(tmp_path, extra, message):
    path = tmp_path / "budget.toml"
    path.write_text(f'[[task]]\nname = "x"\ndataset = "digits"\nrecipe = "digits-mlp"\n{extra}\n')
    with pytest.raises(FedseedError, match=message):
        load_budget_config(path)


def test_the_cli_refuses_a_bad_config_with_one_line_and_exit_2(tmp_path):
    path = tmp_path / "budget.toml"
    path.write_text('[[task]]\nname = "x"\ndataset = "mnist"\nrecipe = "digits-mlp"\n')
    done = run_fedseed("bench", "budget", "--config", str(path), "--out", str(tmp_path / "o"))

    assert done.code == 2
    assert "dataset 'mnist'" in done.err and len(done.err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_the_shipped_config_runs_the_issue_s_grid_for_both_recipes():
    from support import ROOT

    _, tasks = load_budget_config(ROOT / "simulations" / "budget.toml")
    assert [t.recipe for t in tasks] == ["digits-mlp", "text-ngram"]
    for t in tasks:
        assert t.samples == (10, 25, 50, 100, 250, 500)
        assert t.steps == (1, 5, 10, 30, 100, 300)
        assert set(t.starts) == {"default", "meta", "shared"}
