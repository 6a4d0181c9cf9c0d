"""`make demo`'s job, small."""

from __future__ import annotations


def test_demo_prints_a_per_user_table(fedseed):
    run = fedseed("demo", "--local", "--users", "3")

    assert run.code == 0, run.err
    assert "personalised accuracy per user" in run.out
    lines = [line for line in run.out.splitlines() if line.strip().startswith("│")]
    assert len(lines) == 3
    assert "mean test accuracy" in run.out


def test_demo_users_get_skewed_data_and_beat_chance():
    from fedseed.demo import run_demo
    from fedseed.recipe import apply_assignment, load_builtin

    recipe = apply_assignment(load_builtin("digits-mlp"), {"budget.max_steps": 60})

    rows = run_demo(recipe, users=4, alpha=0.3)

    assert len(rows) == 4
    assert sum(r.examples for r in rows) == 1797
    assert min(r.test_metric for r in rows) > 0.2
    assert all(r.recipe_bytes < 4096 for r in rows)
