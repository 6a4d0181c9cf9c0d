"""`fedseed simulate`: the real ServerApp and ClientApp on Flower's simulation runtime."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fedseed.provenance.envelope import Envelope
from fedseed.recipe import parse_recipe


@pytest.mark.slow
def test_simulated_federation_end_to_end(fedseed, tmp_path, quick_recipe):
    home = tmp_path / "sim"

    run = fedseed("simulate", "--clients", "3", "--rounds", "2", "--fraction", "1.0",
                  "--recipe", str(quick_recipe), "--home", str(home), timeout=400)

    assert run.code == 0, run.err[-3000:]
    report = json.loads((home / "report.json").read_text())
    assert [r["round"] for r in report["rounds"]] == [1, 2]
    for r in report["rounds"]:
        assert r["sampled"] == r["accepted"] == 3 and r["rejected"] == {}
        assert r["array_records"] == 0  # every message, both ways: no weights
        assert 0 < r["bytes_down"] / 3 < 16_000 and 0 < r["bytes_up"] / 3 < 16_000
    assert report["final"]["reported"] == 3
    assert "test-metric-meta" in report["final"]
    assert "final personalization (3/3 clients)" in run.out
    # every client kept its personalised weights on its own disk
    assert len(list((home / "nodes").glob("*/model.safetensors"))) == 3


@pytest.mark.slow
def test_final_meta_recipe_is_signed_and_its_lineage_names_the_accepted_clients(
        fedseed, tmp_path, quick_recipe, monkeypatch):
    home = tmp_path / "sim"
    run = fedseed("simulate", "--clients", "2", "--rounds", "1", "--fraction", "1.0",
                  "--recipe", str(quick_recipe), "--home", str(home), "--no-final",
                  timeout=400)
    assert run.code == 0, run.err[-3000:]
    monkeypatch.setenv("FEDSEED_HOME", str(home))  # the server's keys and trust store

    verified = fedseed("recipe", "verify", "digits-quick-meta:latest", "--role", "server",
                       "--chain", "--registry", str(home / "registry"))
    pulled = fedseed("recipe", "pull", "digits-quick-meta:latest", "-o",
                     str(tmp_path / "meta.json"), "--registry", str(home / "registry"))

    assert verified.code == 0, verified.err
    assert "every ancestor verified" in verified.out
    assert pulled.code == 0, pulled.err
    meta = parse_recipe(Envelope.from_json((tmp_path / "meta.json").read_bytes()).payload)
    assert meta.lineage.round == 1 and meta.lineage.method == "best"
    assert len(meta.lineage.parents) == 2  # one per accepted client recipe


@pytest.mark.slow
def test_resume_continues_from_the_last_meta_recipe(fedseed, tmp_path, quick_recipe,
                                                    monkeypatch):
    home = tmp_path / "sim"
    common = ["--clients", "2", "--fraction", "1.0", "--recipe", str(quick_recipe),
              "--home", str(home), "--no-final"]
    first = fedseed("simulate", "--rounds", "1", *common, timeout=400)
    assert first.code == 0, first.err[-3000:]
    after_first = json.loads((home / "report.json").read_text())["meta_digests"][-1]

    second = fedseed("simulate", "--rounds", "2", "--resume", *common, timeout=400)

    assert second.code == 0, second.err[-3000:]
    report = json.loads((home / "report.json").read_text())
    assert [r["round"] for r in report["rounds"]] == [2]
    assert report["rounds"][0]["meta_digest"] == after_first
    monkeypatch.setenv("FEDSEED_HOME", str(home))
    pulled = fedseed("recipe", "pull", "digits-quick-meta:latest", "-o",
                     str(tmp_path / "m.json"), "--registry", str(home / "registry"))
    assert pulled.code == 0, pulled.err
    meta = parse_recipe(Envelope.from_json((tmp_path / "m.json").read_bytes()).payload)
    assert meta.lineage.round == 2


def test_resume_without_an_earlier_run_is_bad_input(fedseed, tmp_path):
    run = fedseed("simulate", "--resume", "--home", str(tmp_path / "nothing"))

    assert run.code == 2 and "--resume needs --home" in run.err


def test_natural_partitioning_of_a_set_without_user_ids_is_bad_input(fedseed, tmp_path):
    run = fedseed("simulate", "--partitioner", "natural", "--home", str(tmp_path / "h"))

    assert run.code == 2 and "has no natural partition" in run.err


@pytest.mark.slow
def test_portfolio_aggregator_runs_through_the_real_apps(fedseed, tmp_path, quick_recipe,
                                                         monkeypatch):
    # fedex writes a portfolio into the signed meta-recipe; the server deals from it and
    # the production ClientApp runs exactly what it was dealt (or the reply is refused).
    home = tmp_path / "sim"
    run = fedseed("simulate", "--clients", "4", "--rounds", "2", "--fraction", "1.0",
                  "--recipe", str(quick_recipe), "--home", str(home), "--no-final",
                  "--aggregator", "fedex", timeout=400)
    assert run.code == 0, run.err[-3000:]
    report = json.loads((home / "report.json").read_text())
    assert [r["accepted"] for r in report["rounds"]] == [4, 4]
    assert all(r["rejected"] == {} for r in report["rounds"])  # no "wrong assignment"
    monkeypatch.setenv("FEDSEED_HOME", str(home))
    pulled = fedseed("recipe", "pull", "digits-quick-meta:latest", "-o",
                     str(tmp_path / "meta.json"), "--registry", str(home / "registry"))
    assert pulled.code == 0, pulled.err
    meta = parse_recipe(Envelope.from_json((tmp_path / "meta.json").read_bytes()).payload)
    assert meta.lineage.method == "fedex" and meta.portfolio is not None
    assert meta.portfolio.stage == 2
    assert abs(sum(c.weight for c in meta.portfolio.candidates) - 1) < 1e-6


def test_unknown_aggregator_is_one_line_and_exit_2(fedseed, tmp_path):
    run = fedseed("simulate", "--clients", "2", "--aggregator", "fedx", "--home",
                  str(tmp_path / "sim"))
    assert run.code == 2
    assert "unknown aggregator 'fedx'" in run.err and len(run.err.strip().splitlines()) == 1


@pytest.mark.slow
def test_trajectory_mode_shares_seeds_and_scalars_only(fedseed, tmp_path, monkeypatch):
    # The real apps in trajectory mode: clients take zeroth-order steps, reply with
    # per-seed sums; the server signs coefficients; every node replays and fine-tunes.
    home = tmp_path / "sim"
    run = fedseed("simulate", "--clients", "3", "--rounds", "2", "--fraction", "1.0",
                  "--mode", "trajectory", "--pool-size", "128", "--zo-steps", "10",
                  "--seeds-per-step", "4", "--max-steps", "20", "--home", str(home),
                  timeout=400)
    assert run.code == 0, run.err[-3000:]
    report = json.loads((home / "report.json").read_text())
    for r in report["rounds"]:
        assert r["accepted"] == 3 and r["array_records"] == 0  # no weights, either way
        assert r["bytes_up"] / 3 < 4_000  # a few hundred seed sums, signed
    assert "test-metric-shared" in report["final"]
    assert "replayed shared model" in run.out
    monkeypatch.setenv("FEDSEED_HOME", str(home))
    pulled = fedseed("recipe", "pull", "digits-mlp-meta:latest", "-o",
                     str(tmp_path / "meta.json"), "--registry", str(home / "registry"))
    assert pulled.code == 0, pulled.err
    meta = parse_recipe(Envelope.from_json((tmp_path / "meta.json").read_bytes()).payload)
    assert meta.trajectory is not None and meta.lineage.method == "trajectory"
    assert np.count_nonzero(meta.trajectory.coefficient_array()) > 0


def test_trajectory_mode_refuses_a_configuration_aggregator(fedseed, tmp_path):
    run = fedseed("simulate", "--mode", "trajectory", "--aggregator", "fedex", "--home",
                  str(tmp_path / "sim"))
    assert run.code == 2 and "drop aggregator 'fedex'" in run.err
    assert not (tmp_path / "sim").exists()  # nothing written for a refused run
