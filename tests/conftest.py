"""Shared fixtures. Nothing here talks to a hub: offline mode is forced for the whole
session, and every command runs as a user runs it (a real subprocess)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from support import HANG_GUARD, Run, run_fedseed

from fedseed.recipe import canonical_dict, load_builtin

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"



@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    home = tmp_path_factory.mktemp("fedseed-home")
    monkeypatch.setenv("FEDSEED_HOME", str(home))
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def fedseed(tmp_path: Path):
    """Run the ``fedseed`` CLI in a subprocess, from ``tmp_path``."""

    def run(*args: str, cwd: Path | None = None, timeout: float = HANG_GUARD) -> Run:
        return run_fedseed(*args, cwd=cwd or tmp_path, timeout=timeout)

    return run


@pytest.fixture(scope="session")
def quick_recipe(tmp_path_factory):
    """digits-mlp with a small budget and search space, so federation rounds take seconds."""
    data = canonical_dict(load_builtin("digits-mlp"))
    data["name"] = "digits-quick"
    data["budget"] = {**data["budget"], "max_steps": 20, "eval_every": 10}
    data["search_space"] = {"params": {
        "optimizer.lr": {"kind": "log_uniform", "low": 0.001, "high": 0.05},
        "budget.max_steps": {"kind": "choice", "values": [10, 20]},
    }}
    path = tmp_path_factory.mktemp("recipes") / "digits-quick.json"
    path.write_text(json.dumps(data))
    return path
