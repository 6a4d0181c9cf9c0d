"""A small recipe for federation runs in tests: few steps, a small search space."""

from __future__ import annotations

import json

import pytest

from fedseed.recipe import canonical_dict, load_builtin


@pytest.fixture
def quick_recipe(tmp_path):
    data = canonical_dict(load_builtin("digits-mlp"))
    data["name"] = "digits-quick"
    data["budget"] = {**data["budget"], "max_steps": 20, "eval_every": 10}
    data["search_space"] = {"params": {
        "optimizer.lr": {"kind": "log_uniform", "low": 0.001, "high": 0.05},
        "budget.max_steps": {"kind": "choice", "values": [10, 20]},
    }}
    path = tmp_path / "digits-quick.json"
    path.write_text(json.dumps(data))
    return path
