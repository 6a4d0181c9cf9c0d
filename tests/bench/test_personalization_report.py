"""The personalization benchmark's configuration and the 100-user target lines, on
synthetic payloads (the smoke test runs the benchmark itself)."""

from __future__ import annotations

import pytest
from support import ROOT

from fedseed.bench.personalization import schedules
from fedseed.bench.personalization_config import Scenario, load_config
from fedseed.bench.personalization_report import (
    charlm_targets,
    many_users_targets,
    schedule_lines,
)
from fedseed.errors import FedseedError


def _row(method: str, mean: float, up: int = 1_000, down: int = 1_000, **extra):
    return {"method": method, "mean": mean, "bytes_up_per_client": up,
            "bytes_down_per_client": down, **extra}


def _scenario(clients: int, methods: list[dict]) -> dict:
    return {"scenario": f"digits-{clients}", "dataset": "digits", "clients": clients,
            "higher_is_better": True, "methods": methods}


def test_the_100_user_target_counts_every_personalised_fedseed_row():
    methods = [_row("fedseed-fedex", 0.74, meta_config={"optimizer.lr": 0.01}),
               _row("fedavg", 0.80, up=400_000, down=400_000),
               _row("fedavg+ft", 0.83, up=400_000, down=400_000),
               _row("fedseed-first-order", 0.79, up=20_000, down=20_000),
               _row("fedseed-first-order+ft", 0.85, up=20_000, down=20_000)]
    payload = {"scenarios": [_scenario(100, methods), _scenario(20, methods)]}

    lines = many_users_targets(payload)

    assert len(lines) == 2  # the 20-user scenario has targets of its own elsewhere
    assert "fedseed-first-order+ft, 0.850" in lines[0] and lines[0].endswith("met.")
    assert "+2.0 points" in lines[0] and "20.0× fewer bytes" in lines[0]
    assert "0.790 vs FedAvg's shared model 0.800" in lines[1]


def test_a_fedseed_run_behind_fedavg_ft_is_missed():
    methods = [_row("fedseed-sha", 0.74, meta_config={}), _row("fedavg+ft", 0.84),
               _row("fedseed-trajectory", 0.99)]  # a shared model, not personalised
    (line,) = many_users_targets({"scenarios": [_scenario(100, methods)]})

    assert "fedseed-sha" in line and "-10.0 points" in line and line.endswith("missed.")


def test_the_100_user_scenarios_run_first_order_as_the_sweep_chose():
    _, scenarios = load_config(ROOT / "simulations" / "personalization.toml",
                               only=["digits-a0.5-100", "digits-a0.1-100"])

    for s in scenarios:
        assert s.first_order and s.fo_lr == 0.01 and s.projection_dtype == "float16"
        assert s.projection_k == 600 and s.fo_rounds == 40
        # FedAvg runs the same schedule, so the comparison is like for like.
        assert (s.fedavg_rounds, s.fedavg_local_steps, s.fedavg_lr) == \
            (s.fo_rounds, s.fo_local_steps, s.fo_lr)
        (line, _) = schedule_lines({"schedules": schedules(s, recipe_lr=0.001)})
        assert "like for like" in line and "not the same" not in line


def test_a_first_order_row_on_another_schedule_is_flagged_as_not_like_for_like():
    s = Scenario(name="x", dataset="digits", recipe="digits-mlp", first_order=True,
                 fo_rounds=40, fo_lr=0.01, fedavg_rounds=20)
    (line, _) = schedule_lines({"schedules": schedules(s, recipe_lr=0.001)})

    assert "FedAvg ran 20 rounds × 20 local steps at lr 0.001" in line
    assert "40 rounds × 20 local steps at lr 0.01" in line
    assert "**not the same schedule**" in line


def test_a_negative_fedavg_lr_is_refused_with_its_value():
    with pytest.raises(FedseedError, match="scenario 'x': fedavg_lr -1"):
        Scenario(name="x", dataset="digits", recipe="digits-mlp", fedavg_lr=-1)


def test_a_wrong_projection_dtype_names_the_scenario_and_the_value():
    with pytest.raises(FedseedError, match="scenario 'x'.*projection_dtype 'int8'"):
        Scenario(name="x", dataset="digits", recipe="digits-mlp", projection_dtype="int8")


def test_the_char_lm_target_takes_the_lowest_perplexity_and_counts_bytes():
    methods = [_row("fedseed-sha", 18.4, meta_config={}),
               _row("fedavg+ft", 12.6, up=10_000_000, down=10_000_000),
               _row("fedseed-trajectory+ft", 14.4, up=10_000, down=10_000),
               _row("fedseed-first-order+ft", 12.5, up=90_000, down=90_000)]
    scenario = {"scenario": "fortunes", "dataset": "fortunes", "clients": 8,
                "higher_is_better": False, "metric": "perplexity", "methods": methods}

    met, fewer = charlm_targets({"scenarios": [scenario]})

    assert "fedseed-first-order+ft, 12.500" in met and met.endswith("met.")
    assert "111.1×" in fewer and fewer.endswith("met.")
    methods[3]["mean"] = 13.0
    lines = charlm_targets({"scenarios": [scenario]})
    assert lines[0].endswith("missed.") and "fedseed-first-order+ft" in lines[0]


def test_the_fortunes_scenario_runs_first_order_on_fedavg_s_schedule():
    _, (s,) = load_config(ROOT / "simulations" / "personalization.toml", only=["fortunes"])

    assert s.first_order and s.projection_basis == "count-sketch"
    assert (s.fo_rounds, s.fo_local_steps) == (s.fedavg_rounds, s.fedavg_local_steps)
