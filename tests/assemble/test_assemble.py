"""Assembly: recipe -> torch module, deterministic across processes, no hub."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from fedseed.assemble import (
    assemble,
    load_weights,
    parameter_count,
    save_weights,
    state_dict_digest,
)
from fedseed.errors import RecipeError
from fedseed.recipe import canonical_dict, load_builtin, recipe_from_dict


@pytest.mark.parametrize(
    ("name", "count"),
    [("digits-mlp", 9_610), ("image-cnn-small", 13_706), ("text-bert-tiny", 512_514),
     ("charlm-gpt2-tiny", 446_336)],
)
def test_parameter_counts(name, count):
    recipe = load_builtin(name)

    assert parameter_count(recipe) == count
    assert sum(p.numel() for p in assemble(recipe).parameters()) == count


def test_bert_with_wordpiece_vocabulary_is_the_4_4m_bert_tiny():
    data = canonical_dict(load_builtin("text-bert-tiny"))
    data["architecture"]["config"]["vocab_size"] = 30_522

    assert parameter_count(recipe_from_dict(data)) == 4_386_178


def test_same_recipe_same_weights_and_rng_untouched():
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)

    first = state_dict_digest(assemble(load_builtin("text-bert-tiny")))
    second = state_dict_digest(assemble(load_builtin("text-bert-tiny")))

    assert first == second
    assert torch.equal(torch.rand(1), expected_next)


def test_seed_changes_weights():
    recipe = load_builtin("digits-mlp")
    other = recipe.model_copy(update={"init": recipe.init.model_copy(update={"seed": 1})})

    assert state_dict_digest(assemble(recipe)) != state_dict_digest(assemble(other))


@pytest.mark.parametrize("name", ["digits-mlp", "text-bert-tiny", "charlm-gpt2-tiny"])
def test_assembly_is_bit_identical_in_two_processes(fedseed, tmp_path, name):
    # This process and a fresh `fedseed assemble` process write the same file.
    here, there = tmp_path / "here.safetensors", tmp_path / "there.safetensors"
    recipe = load_builtin(name)
    save_weights(assemble(recipe), here, recipe)

    run = fedseed("assemble", name, "-o", str(there))

    assert run.code == 0, run.err
    assert hashlib.sha256(here.read_bytes()).digest() == hashlib.sha256(
        there.read_bytes()).digest()


def test_saved_weights_load_back_and_carry_the_recipe_digest(fedseed, tmp_path):
    from safetensors import safe_open

    from fedseed.recipe import recipe_digest

    out = tmp_path / "m.safetensors"
    assert fedseed("assemble", "charlm-gpt2-tiny", "-o", str(out)).code == 0
    recipe = load_builtin("charlm-gpt2-tiny")

    model = load_weights(assemble(recipe.model_copy(update={
        "init": recipe.init.model_copy(update={"seed": 9})})), out)

    assert state_dict_digest(model) == state_dict_digest(assemble(recipe))
    with safe_open(str(out), "pt") as handle:
        assert handle.metadata()["fedseed.recipe"] == recipe_digest(recipe)


def test_models_run_forward_on_their_inputs():
    from fedseed.data import load_digits, load_toy_text
    from fedseed.data.tensors import to_tensors
    from fedseed.train.objectives import logits_of

    cases = [("digits-mlp", load_digits()), ("image-cnn-small", load_digits()),
             ("text-bert-tiny", load_toy_text(8)), ("charlm-gpt2-tiny", load_toy_text(8))]
    for name, examples in cases:
        recipe = load_builtin(name)
        batch = {k: v[:4] for k, v in to_tensors(examples, recipe).items()}

        logits = logits_of(assemble(recipe), batch, recipe)

        assert logits.shape[0] == 4
        assert torch.isfinite(logits).all()


def test_unknown_architecture_is_a_clear_error(fedseed, tmp_path):
    data = canonical_dict(load_builtin("digits-mlp"))
    data["architecture"] = {"family": "torch", "name": "resnet", "config": {}}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))

    run = fedseed("assemble", str(path), "-o", str(tmp_path / "m.safetensors"))

    assert run.code == 2
    assert "unknown architecture" in run.err and "torch:mlp" in run.err
    assert len(run.err.strip().splitlines()) == 1
    assert not (tmp_path / "m.safetensors").exists()


def test_architecture_that_does_not_fit_the_task_is_a_clear_error():
    data = canonical_dict(load_builtin("text-bert-tiny"))
    data["task"] = {"kind": "language-modeling", "modality": "text", "metric": "perplexity"}

    with pytest.raises(RecipeError, match="transformers:bert cannot do task.kind"):
        recipe_from_dict(data)


def test_nothing_touches_a_hub(monkeypatch):
    import huggingface_hub

    def refuse(*args, **kwargs):
        raise AssertionError("hub access")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", refuse)

    assert parameter_count(load_builtin("text-bert-tiny")) > 0
    assemble(load_builtin("charlm-gpt2-tiny"))


def test_output_that_is_a_folder_is_one_clear_error(fedseed, tmp_path):
    run = fedseed("assemble", "digits-mlp", "-o", str(tmp_path))

    assert run.code == 2
    assert "is a folder" in run.err and len(run.err.strip().splitlines()) == 1
    assert not list(tmp_path.glob(".*.tmp"))
