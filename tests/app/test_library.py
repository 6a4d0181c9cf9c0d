"""docs/library.md's examples, run from the page itself: the user's own ServerApp and
ClientApp in a real Flower simulation, a custom aggregator in an in-process federation,
a custom model trained from its pinned recipe, and the line budgets the page promises
(ServerApp <= 20 lines, aggregator <= 30, model <= 20)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support import HANG_GUARD

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "library.md"


def blocks() -> list[str]:
    """The page's python blocks, in order."""
    return re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)


def lines_of_code(block: str) -> int:
    return sum(1 for line in block.splitlines() if line.strip())


def test_the_page_keeps_its_line_budgets():
    server, client, runner, aggregator, in_process, model = blocks()
    assert "FedseedStrategy" in server and "@app.main()" in server
    assert lines_of_code(server) <= 20
    assert "class TopHalfLr" in aggregator and lines_of_code(aggregator) <= 30
    assert "make_client_app(examples=" in client and "run_simulation" in runner
    assert "InProcessTransport" in in_process
    assert "register(" in model and lines_of_code(model) <= 20


@pytest.mark.slow
def test_own_server_app_and_client_app_federate_under_flower(tmp_path):
    server, client, runner, *_ = blocks()
    (tmp_path / "my_server_app.py").write_text(server)
    (tmp_path / "my_client_app.py").write_text(client)
    (tmp_path / "run.py").write_text(runner)
    home = tmp_path / "home"
    done = subprocess.run([sys.executable, "run.py"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=HANG_GUARD,
                          env={**os.environ, "FEDSEED_HOME": str(home),
                               "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"})
    assert done.returncode == 0, done.stderr[-3000:]
    # The page says what this prints; all three nodes were accepted in both rounds.
    assert "accepted per round: [3, 3]" in done.stdout, done.stdout[-2000:]
    from fedseed.provenance.trust import load_trust
    from fedseed.provenance.verify import verify_envelope
    from fedseed.registry.store import LocalRegistry

    registry = LocalRegistry(home / "registry")
    trust = load_trust(home)
    last = verify_envelope(registry.fetch("digits-mlp-meta:latest"), trust, role="server")
    second = verify_envelope(registry.fetch("digits-mlp-meta:round-2"), trust, role="server")
    assert last.digest == second.digest and last.recipe.lineage.method == "fedex"
    assert len(last.recipe.lineage.parents) == 3  # the three client recipes of round 2
    # The strategy stored every accepted client recipe next to the meta-recipes.
    clients = [e for e in registry.entries() if e.name == "digits-mlp-meta-clients"]
    assert len(clients) == 6


@pytest.mark.slow
def test_custom_aggregator_runs_in_an_in_process_federation(capsys):
    _, _, _, aggregator, in_process, _ = blocks()
    namespace: dict = {"__name__": "library_page"}
    exec(compile(aggregator, "docs/library.md (aggregator)", "exec"), namespace)
    exec(compile(in_process, "docs/library.md (in process)", "exec"), namespace)
    result = namespace["result"]
    assert [r.accepted for r in result.rounds] == [4, 4]
    assert all(r.array_records == 0 and r.bytes_up > 0 for r in result.rounds)
    meta = result.meta
    assert meta.lineage.method == "top-half-lr" and meta.lineage.round == 2
    # The lr the aggregator chose is one the better half of round 2's clients ran,
    # averaged: inside the search space the recipe explores.
    space = meta.search_space.params["optimizer.lr"]
    assert space.low <= meta.optimizer.lr <= space.high
    assert result.final["reported"] == 4
    assert 0.0 <= result.final["test-metric-meta"]["mean"] <= 1.0
    assert "top-half-lr" in capsys.readouterr().out


def test_custom_model_block_trains_from_its_pinned_recipe(tmp_path, monkeypatch):
    *_, model = blocks()
    (tmp_path / "my_model.py").write_text(model)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    import my_model

    from fedseed import apply_overrides, personalize_examples, with_step_budget
    from fedseed.data.builtin import load_builtin_dataset

    try:
        arch = my_model.recipe.architecture
        assert arch.entry == "my_model:tiny_cnn" and arch.config == {"channels": 8}
        digits = load_builtin_dataset("digits")
        recipe = apply_overrides(with_step_budget(my_model.recipe, 100),
                                 {"optimizer.lr": 0.01})
        done = personalize_examples(recipe, digits.take(list(range(400))))
        assert type(done.result.model).__name__ == "TinyCNN"
        assert done.recipe.evidence.final.test_metric > 0.5
    finally:
        from fedseed.architectures import unregister

        unregister("tiny-cnn")
        sys.modules.pop("my_model", None)
        importlib.invalidate_caches()
