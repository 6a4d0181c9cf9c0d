"""`fedseed simulate`: the real ServerApp and ClientApp on Flower's simulation runtime."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest
from support import run_fedseed

from fedseed.provenance.envelope import Envelope
from fedseed.recipe import parse_recipe


@pytest.fixture(scope="module")
def federation(tmp_path_factory, quick_recipe):
    """One federation, run as a user resumes one: round 1 (no final personalization),
    then ``--resume`` to round 2 with it. FedEx, so the portfolio path runs too, and
    the Adam warm start. Every test below reads this one run instead of starting its
    own."""
    home = tmp_path_factory.mktemp("federation") / "sim"
    common = ["--clients", "4", "--fraction", "1.0", "--recipe", str(quick_recipe),
              "--aggregator", "fedex", "--warm-start", "--home", str(home)]
    first = run_fedseed("simulate", "--rounds", "1", "--no-final", *common)
    assert first.code == 0, first.err[-3000:]
    after_first = json.loads((home / "report.json").read_text())
    second = run_fedseed("simulate", "--rounds", "2", "--resume", *common)
    assert second.code == 0, second.err[-3000:]
    report = json.loads((home / "report.json").read_text())
    pulled = run_fedseed("recipe", "pull", "digits-quick-meta:latest", "-o",
                         str(home.parent / "meta.json"), "--registry", str(home / "registry"),
                         env={"FEDSEED_HOME": str(home)})
    assert pulled.code == 0, pulled.err
    meta = parse_recipe(Envelope.from_json((home.parent / "meta.json").read_bytes()).payload)
    return {"home": home, "first": after_first, "report": report, "out": second.out,
            "meta": meta}


@pytest.mark.slow
def test_every_round_accepts_every_client_and_no_weights_cross_the_wire(federation):
    for r in federation["first"]["rounds"] + federation["report"]["rounds"]:
        assert r["sampled"] == r["accepted"] == 4 and r["rejected"] == {}  # no "wrong assignment"
        assert r["array_records"] == 0  # every message, both ways: no weights
        assert 0 < r["bytes_down"] / 4 < 16_000 and 0 < r["bytes_up"] / 4 < 16_000


@pytest.mark.slow
def test_every_client_personalises_and_keeps_its_weights(federation):
    final = federation["report"]["final"]

    assert final["reported"] == 4 and "test-metric-meta" in final
    assert "final personalization (4/4 clients)" in federation["out"]
    # every client kept its personalised weights on its own disk
    for row in final["per_client"]:
        assert (federation["home"] / "nodes" / str(row["node"]) / "model.safetensors").is_file()


@pytest.mark.slow
def test_resume_continues_from_the_last_meta_recipe(federation):
    report = federation["report"]

    assert [r["round"] for r in federation["first"]["rounds"]] == [1]
    assert [r["round"] for r in report["rounds"]] == [2]
    assert report["rounds"][0]["meta_digest"] == federation["first"]["meta_digests"][-1]
    assert federation["meta"].lineage.round == 2


@pytest.mark.slow
def test_final_meta_recipe_is_signed_and_its_lineage_names_the_accepted_clients(federation):
    home = federation["home"]

    verified = run_fedseed("recipe", "verify", "digits-quick-meta:latest", "--role", "server",
                           "--chain", "--registry", str(home / "registry"),
                           env={"FEDSEED_HOME": str(home)})  # the server's trust store

    assert verified.code == 0, verified.err
    assert "every ancestor verified" in verified.out
    meta = federation["meta"]
    assert meta.lineage.method == "fedex"
    assert len(meta.lineage.parents) == 4  # one per accepted client recipe


@pytest.mark.slow
def test_portfolio_aggregator_runs_through_the_real_apps(federation):
    # fedex writes a portfolio into the signed meta-recipe; the server deals from it and
    # the production ClientApp runs exactly what it was dealt (or the reply is refused).
    meta = federation["meta"]

    assert meta.portfolio is not None and meta.portfolio.stage == 2
    assert abs(sum(c.weight for c in meta.portfolio.candidates) - 1) < 1e-6


@pytest.mark.slow
def test_warm_start_pools_the_clients_adam_moments_into_the_meta_recipe(federation):
    # Round 2's clients started Adam from the moments round 1 pooled (the apps accepted
    # every reply of both rounds, so the warm-started recipe trained and verified).
    warm = federation["meta"].warm_start

    assert warm is not None and len(warm.second_moment_rms) > 0


def test_resume_without_an_earlier_run_is_bad_input(fedseed, tmp_path):
    run = fedseed("simulate", "--resume", "--home", str(tmp_path / "nothing"))

    assert run.code == 2 and "--resume needs --home" in run.err


def test_a_ray_address_nobody_listens_on_is_one_line_and_writes_nothing(tmp_path):
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    home = tmp_path / "sim"

    run = run_fedseed("simulate", "--clients", "2", "--home", str(home),
                      env={"FEDSEED_RAY_ADDRESS": f"127.0.0.1:{port}"})

    assert run.code == 2, run.err
    assert f"$FEDSEED_RAY_ADDRESS=127.0.0.1:{port}: no Ray cluster answers there" in run.err
    assert len(run.err.strip().splitlines()) == 1 and not home.exists()


def test_natural_partitioning_of_a_set_without_user_ids_is_bad_input(fedseed, tmp_path):
    run = fedseed("simulate", "--partitioner", "natural", "--home", str(tmp_path / "h"))

    assert run.code == 2 and "has no natural partition" in run.err


@pytest.mark.slow
def test_trajectory_mode_shares_seeds_and_scalars_only(fedseed, tmp_path, monkeypatch):
    # The real apps in trajectory mode: clients take zeroth-order steps, reply with
    # per-seed sums; the server signs coefficients; every node replays and fine-tunes.
    home = tmp_path / "sim"
    run = fedseed("simulate", "--clients", "3", "--rounds", "2", "--fraction", "1.0",
                  "--mode", "trajectory", "--pool-size", "128", "--zo-steps", "10",
                  "--seeds-per-step", "4", "--max-steps", "20", "--home", str(home))
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


@pytest.mark.parametrize(("args", "message"), [
    (["--aggregator", "trajectory"], "set mode = 'trajectory'"),
    (["--pool-size", "256"], "--pool-size: trajectory settings, but --mode is 'recipes'"),
    (["--zo-lr", "0.1", "--sampling", "pro"], "--zo-lr, --sampling: trajectory settings"),
    (["--mode", "trajectory", "--warm-start"], "drop warm-start"),
    (["--mode", "seeds"], "mode must be recipes or trajectory"),
    (["--recipe", "text-bert-tiny"], "is a text recipe but the data has no text"),
    (["--dataset", "toy-text"], "recipe 'digits-mlp' needs numeric features"),
])
def test_contradictory_settings_are_one_line_exit_2_and_write_nothing(fedseed, tmp_path,
                                                                     args, message):
    home = tmp_path / "sim"

    run = fedseed("simulate", "--clients", "2", *args, "--home", str(home))

    assert run.code == 2, run.err
    assert message in run.err and len(run.err.strip().splitlines()) == 1, run.err
    assert not home.exists()
