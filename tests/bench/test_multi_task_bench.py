"""``fedseed bench multi-task`` end to end on a tiny federation of two tasks (real
Flower simulation: every mixed-task reply must be accepted), and its pieces."""

from __future__ import annotations

import json

import numpy as np
import pytest
from support import run_fedseed

from fedseed.bench.multi_task import Config, make_users, relabel, targets
from fedseed.data.examples import Examples
from fedseed.errors import FedseedError

SMOKE = """
recipe = "digits-mlp"
tasks = ["identity", "parity"]
users = 6
alpha = 1.0
rounds = 2
per_task = false
fedavg = false
workers = 1
"""


@pytest.mark.slow
def test_one_federation_of_two_tasks_accepts_every_reply_and_scores_each_task(tmp_path):
    (tmp_path / "mt.toml").write_text(SMOKE)
    done = run_fedseed("bench", "multi-task", "--config", str(tmp_path / "mt.toml"),
                       "--out", str(tmp_path / "out"), env={"HF_HUB_OFFLINE": "1"})
    assert done.code == 0, done.err[-2000:]
    payload = json.loads((tmp_path / "out" / "multi_task.json").read_text())

    shared = payload["costs"]["fedseed-shared"]
    # 4 federated users (one of each group's three held out), 2 rounds: every reply of
    # either task accepted, none refused as a changed recipe.
    assert shared["accepted"] == 8 and shared["rejected"] == 0
    assert 0 < shared["bytes_up"] < 50_000  # recipes, not weights
    groups = {g["task"]: g for g in payload["groups"]}
    assert set(groups) == {"identity", "parity"}
    assert groups["parity"]["labels"] == 2 and groups["identity"]["labels"] == 10
    for g in groups.values():
        assert g["users"] == 3 and g["held_out"] == 1
        for m in ("local-default", "fedseed-shared"):
            assert 0.0 <= g["methods"][m]["mean"] <= 1.0
    # Parity is the easier task; both far above chance on digits.
    assert groups["parity"]["methods"]["local-default"]["mean"] > 0.6
    assert [t["task"] for t in payload["targets"]] == ["identity", "parity"]
    md = (tmp_path / "out" / "multi_task.md").read_text()
    assert "## Target: every group's personalised mean beats its local-default" in md
    assert "fedavg" not in md.split("## Mean test accuracy")[1].split("The shared")[0]
    assert (tmp_path / "out" / "multi_task.png").stat().st_size > 5_000


def test_relabelling_maps_digits_to_each_task():
    ex = Examples(source="d", features=np.zeros((4, 64)), labels=np.array([0, 3, 5, 8]))
    assert relabel(ex, "parity").labels.tolist() == [0, 1, 1, 0]
    assert relabel(ex, "at-least-5").labels.tolist() == [0, 0, 1, 1]
    assert relabel(ex, "identity").labels.tolist() == [0, 3, 5, 8]


def test_users_take_tasks_round_robin_and_each_group_holds_some_out():
    users = make_users(Config(users=12, held_out=0.25))
    for task in ("identity", "parity", "at-least-5"):
        group = users.of(task)
        assert len(group) == 4 and len(users.of(task, federated=False)) == 1
        labels = np.concatenate([users.examples[i].labels for i in group])
        assert labels.max() == (9 if task == "identity" else 1)


def test_the_target_needs_three_points_per_group():
    groups = [{"task": "a", "methods": {"fedseed-shared": {"mean": 0.84},
                                        "local-default": {"mean": 0.80}}},
              {"task": "b", "methods": {"fedseed-shared": {"mean": 0.82},
                                        "local-default": {"mean": 0.80}}}]
    a, b = targets(groups)
    assert a["met"] and a["points"] == pytest.approx(4.0)
    assert not b["met"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"tasks": ("identity", "colour")}, "must be two or more of identity, parity"),
    ({"tasks": ("identity",)}, "must be two or more"),
    ({"users": 3}, "users 3 must be at least two per task"),
])
def test_a_bad_config_is_refused_with_the_field(kwargs, message):
    with pytest.raises(FedseedError, match=message):
        Config(**kwargs)
