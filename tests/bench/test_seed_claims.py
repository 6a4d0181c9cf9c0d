"""``fedseed bench seed-claims``: the roadmap's seed and the compressors beside it,
on real tensors, and the benchmark end to end on digits-mlp."""

from __future__ import annotations

import gzip
import json

import pytest
import torch
from support import run_fedseed

from fedseed.bench import seed_compress as sc


@pytest.fixture(scope="module")
def state():
    g = torch.Generator().manual_seed(0)
    # A matrix with a strong 3-direction structure, a conv kernel and a bias.
    basis = torch.randn(3, 40, generator=g)
    rows = torch.randn(200, 3, generator=g) * torch.tensor([5.0, 3.0, 2.0]) @ basis
    return {"w": (rows + 0.1 * torch.randn(200, 40, generator=g) + 0.5).float(),
            "conv": torch.randn(8, 2, 3, 3, generator=g),
            "b": torch.randn(200, generator=g) * 0.2 + 1.0,
            "steps": torch.tensor(7)}  # an integer buffer: left alone


def test_the_pca_seed_keeps_the_statistics_and_not_the_rows(state):
    seed = sc.pca_seed(state, k=3)
    w, made = state["w"].double(), seed.state["w"].double()
    assert made.shape == w.shape and seed.state["conv"].shape == state["conv"].shape
    # Row mean and total variance are kept (up to sampling noise) ...
    assert torch.allclose(made.mean(0), w.mean(0), atol=1.0)
    assert made.var(0).sum() == pytest.approx(w.var(0).sum(), rel=0.25)
    # ... the rows themselves are not: the seed does not reconstruct the matrix.
    assert torch.linalg.norm(made - w) > 0.5 * torch.linalg.norm(w - w.mean(0))
    assert seed.state["steps"] is state["steps"]
    # Stored per matrix: 3 directions, their 3 sds, the row mean and a residual (the
    # conv kernel is read as 8 rows of 2 x 3 x 3 = 18); mean and std per vector.
    assert seed.bytes == 4 * ((3 * 40 + 3 + 40 + 1) + (3 * 18 + 3 + 18 + 1) + 2)
    assert seed.bytes == sc.seed_bytes_of_shapes({k: tuple(v.shape) for k, v in state.items()
                                                  if v.is_floating_point()}, 3)
    again = sc.pca_seed(state, k=3)
    assert torch.equal(again.state["w"], seed.state["w"])  # seeded: the same assembly


def test_low_rank_keeps_the_rows_and_a_full_rank_is_stored_whole(state):
    lr = sc.low_rank(state, k=3)
    w = state["w"]
    err = torch.linalg.norm(lr.state["w"] - w) / torch.linalg.norm(w)
    assert err < 0.05  # the matrix is rank 3 plus a little noise
    assert lr.bytes < sc.float32_bytes(state)
    whole = sc.low_rank(state, k=40)
    assert torch.equal(whole.state["w"], w) and whole.bytes == sc.float32_bytes(state)


def test_pruning_int8_and_gzip(state):
    pruned = sc.magnitude_prune(state, 0.5)
    flat = pruned.state["w"].reshape(-1)
    assert int((flat == 0).sum()) == flat.numel() // 2
    kept = state["w"].reshape(-1)[flat != 0].abs().min()
    assert kept >= state["w"].reshape(-1)[flat == 0].abs().max()
    q = sc.int8_weights(state)
    scale = float(state["w"].abs().max()) / 127
    assert float((q.state["w"] - state["w"]).abs().max()) <= scale / 2 + 1e-6
    assert torch.equal(q.state["b"], state["b"])  # vectors stay float32
    raw = sc.float32_bytes(state)
    assert q.bytes == (200 * 40 + 4) + (8 * 18 + 4) + 4 * 200
    assert 0 < sc.gzip_bytes(state) < raw + 1_000
    assert gzip.compress(b"x" * 1000, 9)  # the module's codec is the standard one


def test_the_benchmark_runs_on_digits_and_states_each_verdict(tmp_path):
    done = run_fedseed("bench", "seed-claims", "--recipe", "digits-mlp", "--no-shapes",
                       "--out", str(tmp_path), env={"HF_HUB_OFFLINE": "1"})
    assert done.code == 0, done.err[-2000:]
    payload = json.loads((tmp_path / "seed_claims.json").read_text())
    (model,) = payload["models"]
    assert model["parameters"] == 9_610 and model["trained"] > 0.5
    seeds = [r for r in model["rows"] if r.get("kind") == "seed"]
    assert [r["k"] for r in seeds] == [2, 5, 10, 15, 20]
    assert all(r["ratio"] > 1 for r in seeds)
    gz = next(r for r in model["rows"] if r.get("kind") == "gzip")
    assert gz["zero_shot"] == model["trained"]  # lossless
    assert {a["start"] for a in model["ablation"]} == {
        "random init", "global stats", "per-layer stats", "PCA seed k=20"}
    assert all(len(a["tests"]) == 3 for a in model["ablation"])
    claims = [v["claim"] for v in payload["verdicts"]]
    assert any("dominates pruning, int8 and gzip" in c for c in claims)
    assert any("seed init equals random init" in c for c in claims)
    md = (tmp_path / "seed_claims.md").read_text()
    assert "| roadmap claim | measured here | verdict |" in md
    assert (tmp_path / "seed_claims.png").stat().st_size > 5_000


def test_the_size_claims_use_the_named_models_shapes():
    from fedseed.bench.seed_claims import shape_claims

    bert, resnet = shape_claims(ks=(15,))
    assert bert["parameters"] == 4_386_178  # BERT-tiny with its 30,522-id vocabulary
    assert 25_000_000 < resnet["parameters"] < 26_000_000  # ResNet-50
    assert bert["ratios"]["15"] == pytest.approx(4 * bert["parameters"] / bert["seed_bytes"]["15"])


def test_an_unknown_recipe_is_one_line_and_exit_2(tmp_path):
    done = run_fedseed("bench", "seed-claims", "--recipe", "nope", "--out", str(tmp_path))
    assert done.code == 2 and "nope" in done.err and len(done.err.strip().splitlines()) == 1
