"""Your own model, explicitly trusted: a package registers a CNN factory in the entry
point group ``fedseed.architectures``; a recipe pins it by name, entry and source
digest; a federation trains it through the real apps; a device whose code differs,
or that never registered it, refuses; and a recipe's ``entry`` is never imported."""

from __future__ import annotations

import importlib
import json
import os
import sys
import textwrap

import pytest
from support import run_fedseed

from fedseed.errors import ArchitectureError, VerificationError
from fedseed.recipe import load_builtin

MODELS = textwrap.dedent('''
    """A user's own model: a small CNN over 8x8 digit images (64 flat features)."""
    import torch
    from torch import nn


    class TinyCNN(nn.Module):
        def __init__(self, channels, num_labels):
            super().__init__()
            self.conv = nn.Conv2d(1, channels, kernel_size=3, padding=1)
            self.head = nn.Linear(channels * 16, num_labels)

        def forward(self, features):
            x = features.view(-1, 1, 8, 8)
            x = nn.functional.max_pool2d(torch.relu(self.conv(x)), 2)
            return self.head(x.flatten(1))


    def tiny_cnn(recipe):
        return TinyCNN(int(recipe.architecture.config.get("channels", 8)),
                       recipe.task.num_labels)
''')

SNEAKY = 'import pathlib; pathlib.Path(__file__).with_name("IMPORTED").write_text("x")\n'


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A folder on sys.path holding the package and its entry point metadata."""
    root = tmp_path / "site"
    info = root / "my_models-0.1.dist-info"
    info.mkdir(parents=True)
    (root / "my_models.py").write_text(MODELS)
    (root / "sneaky.py").write_text(SNEAKY + "def run(recipe):\n    return None\n")
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-models\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[fedseed.architectures]\ntiny-cnn = my_models:tiny_cnn\n")
    monkeypatch.syspath_prepend(str(root))
    importlib.invalidate_caches()
    yield root
    sys.modules.pop("my_models", None)


def _pinned(name="tiny-cnn", config=None):
    from fedseed.architectures import with_architecture

    return with_architecture(load_builtin("digits-mlp"), name, config or {"channels": 4})


def test_entry_points_are_listed_without_importing_them(site):
    from fedseed.architectures import registered_names

    assert "tiny-cnn" in registered_names()
    assert "my_models" not in sys.modules


def test_a_pinned_recipe_builds_the_registered_model(site):
    from fedseed.assemble import assemble

    recipe = _pinned()
    arch = recipe.architecture
    assert arch.family == "custom" and arch.entry == "my_models:tiny_cnn"
    assert arch.source.startswith("sha256:") and arch.config == {"channels": 4}
    model = assemble(recipe)
    assert type(model).__name__ == "TinyCNN"
    assert sum(p.numel() for p in model.parameters()) == 4 * 9 + 4 + 4 * 16 * 10 + 10


def test_a_device_whose_code_differs_refuses(site):
    from fedseed.assemble import assemble

    recipe = _pinned()
    (site / "my_models.py").write_text(MODELS + "\n# a later version\n")
    sys.modules.pop("my_models", None)
    with pytest.raises(VerificationError, match="differs from the code the recipe pins") as e:
        assemble(recipe)
    assert e.value.exit_code == 1 and "\n" not in str(e.value)


def test_a_recipe_naming_code_the_device_never_registered_runs_nothing(site):
    from fedseed.assemble import assemble
    from fedseed.recipe.codec import canonical_dict, recipe_from_dict

    data = canonical_dict(load_builtin("digits-mlp"))
    data["architecture"] = {"family": "custom", "name": "sneaky", "entry": "sneaky:run",
                            "source": "sha256:" + "0" * 64, "config": {}}
    with pytest.raises(ArchitectureError, match="not registered on this device"):
        assemble(recipe_from_dict(data))
    assert not (site / "IMPORTED").exists() and "sneaky" not in sys.modules
    # Registered under the same name, other code: the entry the recipe pins decides.
    data["architecture"]["name"] = "tiny-cnn"
    with pytest.raises(VerificationError, match="pins sneaky:run"):
        assemble(recipe_from_dict(data))
    assert not (site / "IMPORTED").exists()


def test_register_in_process_and_bad_names(site):
    from fedseed.architectures import register, registered_names, unregister

    def factory(recipe):
        return None

    register("in-process", factory)
    try:
        assert "in-process" in registered_names()
    finally:
        unregister("in-process")
    assert "in-process" not in registered_names()
    with pytest.raises(ArchitectureError, match="lowercase"):
        register("Bad Name", factory)
    with pytest.raises(ArchitectureError, match="not registered"):
        _pinned("nobody")


def test_a_custom_cnn_federates(site, tmp_path):
    # The strategy and the real client logic (verify, train, sign) in this process; the
    # Flower path is the same client code (tests/app/test_library.py runs it under
    # Flower). Every node builds the CNN from the entry point the recipe pins.
    from fedseed import (
        FedseedStrategy,
        InProcessTransport,
        RoundSettings,
        apply_overrides,
        get_aggregator,
        open_registry,
        partition,
        server_identity,
        with_step_budget,
    )
    from fedseed.data.builtin import load_builtin_dataset

    key, trust = server_identity(home=tmp_path / "home", create=True)
    registry = open_registry(str(tmp_path / "registry"), trust)
    users = partition(load_builtin_dataset("digits"), 3, partitioner="iid", seed=0)
    # One configuration for every node (lr 0.01, 60 steps): what is tested is that the
    # CNN federates and learns, not how the aggregator explores.
    recipe = apply_overrides(with_step_budget(_pinned(), 60), {"optimizer.lr": 0.01})
    recipe = recipe.model_copy(update={"search_space": None})
    strategy = FedseedStrategy(get_aggregator("best"), recipe,
                               key=key, trust=trust, registry=registry,
                               settings=RoundSettings(num_rounds=1, min_nodes=3,
                                                      client_trust="tofu"))
    result = strategy.start(InProcessTransport(users, trust, registry=registry))
    (round_,) = result.rounds
    assert round_.accepted == 3 and round_.array_records == 0
    assert result.meta.architecture.entry == "my_models:tiny_cnn"
    assert result.final["reported"] == 3
    # Every node trained the CNN: 60 steps lift it well above chance (0.1).
    assert result.final["test-metric-meta"]["mean"] > 0.3


def test_recipe_new_pins_a_registered_factory_from_the_command_line(site, tmp_path):
    # A fresh process (cold): it must find the package on PYTHONPATH, as a device finds
    # an installed one.
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    made = run_fedseed("recipe", "new", "--from", "digits-mlp", "--architecture", "tiny-cnn",
                       "--architecture-config", '{"channels": 6}', "-o",
                       str(tmp_path / "cnn.json"), env=env, cold=True, cwd=tmp_path)
    assert made.code == 0, made.err
    arch = json.loads((tmp_path / "cnn.json").read_text())["architecture"]
    assert arch["entry"] == "my_models:tiny_cnn" and arch["config"] == {"channels": 6}
    assert arch["source"] == _pinned().architecture.source
