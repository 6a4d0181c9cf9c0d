"""Your own data, everywhere: a recipe derived from a CSV's string labels, personalising
on it, `--set task.num_labels`, and a federation over the same CSV partitioned by its
user column (a real Flower simulation). Bad input is one line naming the file, the
column and the value, exit 2, and nothing written."""

from __future__ import annotations

import csv
import json
import random

import pytest
from support import HANG_GUARD

WORDS = {"food": ["pasta", "garlic", "butter", "oven", "bread", "basil"],
         "code": ["kernel", "compiler", "bytes", "debugger", "stack", "patch"],
         "sea": ["sail", "harbour", "tide", "anchor", "gull", "reef"]}


def write_users(path, users=("ana", "bo", "cy"), rows=36, seed=0):
    """A CSV with a user column, text and string labels (each user mixes the three)."""
    rng = random.Random(seed)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["user", "text", "label"])
        for user in users:
            for _ in range(rows):
                label = rng.choice(sorted(WORDS))
                out.writerow([user, " ".join(rng.choice(WORDS[label]) for _ in range(5)),
                              label])
    return path


@pytest.fixture
def my_recipe(fedseed, tmp_path):
    data = write_users(tmp_path / "users.csv")
    run = fedseed("recipe", "new", "--from", "text-ngram", "--labels-from",
                  f"{data}:label", "-o", str(tmp_path / "my.json"))
    assert run.code == 0, run.err
    return data, tmp_path / "my.json", run.out


def test_recipe_new_takes_the_label_names_from_the_file(my_recipe):
    _, recipe, out = my_recipe
    task = json.loads(recipe.read_text())["task"]
    assert task["labels"] == ["code", "food", "sea"] and task["num_labels"] == 3
    assert json.loads(recipe.read_text())["name"] == "my"
    assert "3 labels (code, food, sea)" in out


def test_personalize_reads_string_labels_through_the_recipe(fedseed, my_recipe, tmp_path):
    data, recipe, _ = my_recipe
    run = fedseed("personalize", str(recipe), "--data", str(data), "--out",
                  str(tmp_path / "me"), "--set", "budget.max_steps=60", "-q")
    assert run.code == 0, run.err
    child = json.loads((tmp_path / "me" / "recipe.json").read_text())
    # Five words per row from one category's six: the recipe learns them.
    assert child["evidence"]["final"]["test_metric"] >= 0.8
    assert child["task"]["labels"] == ["code", "food", "sea"]


def test_string_labels_without_a_label_list_say_how_to_derive_one(fedseed, tmp_path):
    data = write_users(tmp_path / "users.csv")
    run = fedseed("personalize", "text-ngram", "--data", str(data), "--out",
                  str(tmp_path / "me"))
    assert run.code == 2
    assert len(run.err.strip().splitlines()) == 1
    assert "users.csv" in run.err and "'label'" in run.err and "recipe new" in run.err
    assert not (tmp_path / "me").exists()


def test_a_label_missing_from_the_recipe_is_named_with_its_row(fedseed, my_recipe, tmp_path):
    _, recipe, _ = my_recipe
    other = tmp_path / "other.csv"
    other.write_text("text,label\npasta oven,food\nsail reef,weather\nkernel bytes,code\n")
    run = fedseed("personalize", str(recipe), "--data", str(other), "--out",
                  str(tmp_path / "me"))
    assert run.code == 2 and len(run.err.strip().splitlines()) == 1
    assert "other.csv" in run.err and "row 1" in run.err and "'weather'" in run.err
    assert not (tmp_path / "me").exists()


def test_set_task_num_labels_fits_a_ten_class_file(fedseed, tmp_path):
    rows = ["text,label"] + [f"word{c} token{c} thing{c},{c}" for c in range(10)
                             for _ in range(6)]
    (tmp_path / "ten.csv").write_text("\n".join(rows) + "\n")
    refused = fedseed("personalize", "text-ngram", "--data", str(tmp_path / "ten.csv"),
                      "--out", str(tmp_path / "a"))
    assert refused.code == 2 and "task.num_labels=2" in refused.err
    assert "--set task.num_labels" in refused.err
    run = fedseed("personalize", "text-ngram", "--data", str(tmp_path / "ten.csv"),
                  "--out", str(tmp_path / "b"), "--set", "task.num_labels=10",
                  "--set", "budget.max_steps=50", "-q")
    assert run.code == 0, run.err
    assert json.loads((tmp_path / "b" / "recipe.json").read_text())["task"]["num_labels"] == 10


def test_recipe_new_refuses_bad_input_in_one_line(fedseed, tmp_path):
    data = write_users(tmp_path / "users.csv")
    cases = [
        (["--labels-from", f"{data}:category"], "no label column 'category'"),
        (["--labels-from", str(data)], "expected FILE:COLUMN"),
        (["--set", "task.colour=3"], "cannot set 'task.colour'"),
        (["--set", "task.num_labels=1"], "num_labels"),
    ]
    for extra, message in cases:
        run = fedseed("recipe", "new", "--from", "text-ngram", "-o",
                      str(tmp_path / "bad.json"), *extra)
        assert run.code == 2, (extra, run.err)
        assert message in run.err and len(run.err.strip().splitlines()) == 1, run.err
        assert not (tmp_path / "bad.json").exists()


@pytest.mark.slow
def test_simulate_federates_a_csv_partitioned_by_its_user_column(fedseed, my_recipe,
                                                                tmp_path):
    data, recipe, _ = my_recipe
    # A user's edit of the derived recipe: 4,096 hash buckets are plenty for 18 words
    # (and keep this federation's model at 131k parameters instead of 2.1M).
    mine = json.loads(recipe.read_text())
    mine["tokenizer"]["buckets"] = 4096
    recipe.write_text(json.dumps(mine))
    home = tmp_path / "run"
    run = fedseed("simulate", "--data", str(data), "--partition-by", "user", "--recipe",
                  str(recipe), "--rounds", "1", "--fraction", "1", "--max-steps", "20",
                  "--aggregator", "fedex", "--home", str(home), timeout=HANG_GUARD)
    assert run.code == 0, run.err[-3000:]
    assert "3 clients" in run.out and "one client per 'user'" in run.out
    report = json.loads((home / "report.json").read_text())
    (round_,) = report["rounds"]
    assert round_["accepted"] == 3 and round_["array_records"] == 0
    final = report["final"]
    assert final["reported"] == 3
    assert sorted(row["num-examples"] for row in final["per_client"]) == [26, 26, 26]
    assert 0.0 <= final["test-metric-meta"]["mean"] <= 1.0


def test_simulate_refuses_bad_user_data_before_writing_anything(fedseed, my_recipe,
                                                               tmp_path):
    data, recipe, _ = my_recipe
    few = write_users(tmp_path / "few.csv", users=("ana", "bo"), rows=30)
    with open(few, "a", encoding="utf-8") as handle:
        handle.write("zed,pasta oven,food\nzed,sail reef,sea\n")
    cases = [
        (["--data", str(data), "--partition-by", "device"], "no column 'device'"),
        (["--data", str(few), "--partition-by", "user"], "user 'zed'"),
        (["--partition-by", "user"], "add --data"),
        (["--data", str(data), "--partition-by", "user", "--clients", "5"], "3 users"),
    ]
    for extra, message in cases:
        home = tmp_path / "never"
        run = fedseed("simulate", "--recipe", str(recipe), "--home", str(home), *extra)
        assert run.code == 2, (extra, run.err)
        assert message in run.err and len(run.err.strip().splitlines()) == 1, run.err
        assert not home.exists()
