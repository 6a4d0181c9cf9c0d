"""Pretrained bases pinned by digest: the store, assembly from a base, pretraining,
and what crosses the wire. Models are tiny (hidden 16, one layer) to stay cheap."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
import torch

from fedseed.assemble import assemble, save_weights
from fedseed.bases import BaseStore, base_digest
from fedseed.bases.pretrain import PretrainSettings
from fedseed.errors import ArchitectureError, BaseNotFound, VerificationError
from fedseed.personalize import personalize_examples
from fedseed.recipe import load_builtin
from fedseed.recipe.builtin import builtin_names
from fedseed.recipe.codec import canonical_bytes, canonical_dict, parse_recipe, recipe_from_dict

CORPUS = "In the beginning was the word, and the word was with the text.\n" * 30


def tiny(base: str | None = None, hidden: int = 16, name: str = "bert"):
    source = "charlm-gpt2-tiny" if name == "gpt2" else "text-bert-tiny"
    data = canonical_dict(load_builtin(source))
    if name == "gpt2":
        data["architecture"]["config"].update(n_embd=hidden, n_layer=1, n_head=2,
                                              n_positions=64)
    else:
        data["architecture"]["config"].update(
            hidden_size=hidden, num_hidden_layers=1, num_attention_heads=2,
            intermediate_size=32, max_position_embeddings=64)
    data["tokenizer"]["max_length"] = 32
    data.pop("search_space", None)
    data["budget"].update(max_steps=4, eval_every=2, early_stopping=None)
    data["schedule"]["warmup_steps"] = 0
    if base is not None:
        data["init"]["base"] = base
    return recipe_from_dict(data)


def write_recipe(path: Path, recipe) -> Path:
    path.write_bytes(canonical_bytes(recipe))
    return path


@pytest.fixture
def base_file(tmp_path: Path) -> Path:
    """A tiny BERT's weights under a different seed, as a safetensors file."""
    data = canonical_dict(tiny())
    data["init"]["seed"] = 7
    path = tmp_path / "b.safetensors"
    save_weights(assemble(recipe_from_dict(data)), path, tiny())
    return path


def test_recipes_without_base_keep_their_bytes_and_a_base_round_trips():
    for name in builtin_names():
        assert b'"base"' not in canonical_bytes(load_builtin(name))
    digest = "sha256:" + "ab" * 32
    raw = canonical_bytes(tiny(digest))
    assert parse_recipe(raw).init.base == digest
    assert canonical_bytes(parse_recipe(raw)) == raw
    with pytest.raises(Exception, match="init.base"):
        recipe_from_dict({**canonical_dict(tiny()), "init": {"seed": 0, "base": "abc"}})


def test_add_list_show_round_trip(fedseed, base_file: Path):
    added = fedseed("base", "add", str(base_file))
    assert added.code == 0, added.err
    digest = "sha256:" + hashlib.sha256(base_file.read_bytes()).hexdigest()
    assert added.out.startswith(digest)
    listed = fedseed("base", "list")
    assert listed.code == 0 and digest in listed.out
    shown = fedseed("base", "show", digest)
    assert shown.code == 0 and "(verified)" in shown.out and "safetensors" in shown.out


def test_tampered_base_is_exit_1_in_one_line(fedseed, base_file: Path, tmp_path: Path):
    stored = BaseStore.default().add(base_file)
    data = bytearray(stored.path.read_bytes())
    data[-1] ^= 1
    stored.path.write_bytes(bytes(data))
    shown = fedseed("base", "show", stored.digest)
    assert shown.code == 1 and len(shown.err.strip().splitlines()) == 1
    assert "hash to" in shown.err
    recipe = write_recipe(tmp_path / "r.json", tiny(stored.digest))
    built = fedseed("assemble", str(recipe), "-o", str(tmp_path / "m.safetensors"))
    assert built.code == 1 and stored.digest in built.err
    assert not (tmp_path / "m.safetensors").exists()


def test_missing_base_is_exit_2_in_one_line_and_writes_nothing(fedseed, tmp_path: Path):
    missing = "sha256:" + "cd" * 32
    recipe = write_recipe(tmp_path / "r.json", tiny(missing))
    run = fedseed("personalize", str(recipe), "--data", "toy-text", "--out",
                  str(tmp_path / "out"), "-q")
    assert run.code == 2, run.err
    assert len(run.err.strip().splitlines()) == 1 and missing in run.err
    assert "fedseed base add" in run.err
    assert not (tmp_path / "out").exists()
    with pytest.raises(BaseNotFound):
        assemble(tiny(missing))


def test_assembly_loads_the_base_exactly_and_keeps_a_seeded_head(base_file: Path):
    digest = BaseStore.default().add(base_file).digest
    from safetensors.torch import load_file

    base = load_file(str(base_file))
    model = assemble(tiny(digest))
    state = model.state_dict()
    for name, tensor in base.items():
        assert torch.equal(state[name], tensor), name
    scratch = assemble(tiny()).state_dict()
    assert not torch.equal(scratch["bert.embeddings.word_embeddings.weight"],
                           state["bert.embeddings.word_embeddings.weight"])


def test_hf_folder_base_digest_and_load(tmp_path: Path):
    folder = tmp_path / "hf"
    model = assemble(tiny())
    model.bert.save_pretrained(folder)  # a bare BertModel: names lack the "bert." prefix
    shell = subprocess.run(
        "find -L . -type f ! -path '*/.*' | sed 's|^\\./||' | LC_ALL=C sort "
        "| xargs -d '\\n' sha256sum | sha256sum", shell=True, cwd=folder,
        capture_output=True, text=True, check=True)
    assert base_digest(folder) == "sha256:" + shell.stdout.split()[0]
    stored = BaseStore.default().add(folder)
    assert stored.kind == "hf-folder" and stored.digest == base_digest(folder)
    data = canonical_dict(tiny(stored.digest))
    data["init"]["seed"] = 3
    loaded = assemble(recipe_from_dict(data)).state_dict()
    assert torch.equal(loaded["bert.encoder.layer.0.output.dense.weight"],
                       model.state_dict()["bert.encoder.layer.0.output.dense.weight"])


def test_shape_mismatch_names_the_tensor(tmp_path: Path):
    path = tmp_path / "wide.safetensors"
    save_weights(assemble(tiny(hidden=32)), path, tiny(hidden=32))
    digest = BaseStore.default().add(path).digest
    wrong = "tensor 'bert.embeddings.[A-Za-z_.]+' has shape .32"
    with pytest.raises(ArchitectureError, match=wrong):
        assemble(tiny(digest))


def test_pretrain_cli_writes_a_base_the_store_verifies(fedseed, tmp_path: Path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(CORPUS)
    recipe = write_recipe(tmp_path / "r.json", tiny(name="gpt2"))
    out = tmp_path / "base"
    run = fedseed("base", "pretrain", str(recipe), "--corpus", str(corpus), "-o", str(out),
                  "--max-steps", "2", "--batch-size", "2", "--add", "-q")
    assert run.code == 0, run.err
    info = json.loads((out / "base.json").read_text())
    assert info["objective"] == "clm" and info["steps"] == 2
    assert info["corpus"][0]["sha256"] == hashlib.sha256(corpus.read_bytes()).hexdigest()
    assert info["digest"] == base_digest(out / "base.safetensors")
    stored = BaseStore.default().resolve(info["digest"])
    assert stored.info["produced_by"]["final_loss"] == info["final_loss"]
    missing = fedseed("base", "pretrain", str(recipe), "--corpus", str(tmp_path / "none.txt"),
                      "-o", str(tmp_path / "b2"))
    assert missing.code == 2 and not (tmp_path / "b2").exists()


def test_pretrained_base_is_cached_by_its_inputs(tmp_path: Path):
    from fedseed.bases import pretrained_base

    corpus = tmp_path / "corpus.txt"
    corpus.write_text(CORPUS)
    settings = PretrainSettings(max_steps=2, batch_size=2)
    calls: list[int] = []
    first = pretrained_base(tiny(), [corpus], settings=settings,
                            progress=lambda step, total, loss: calls.append(step))
    again = pretrained_base(tiny(), [corpus], settings=settings,
                            progress=lambda step, total, loss: calls.append(step))
    assert first == again and calls == [1, 2]  # the second call trained nothing
    model = assemble(tiny(first))
    assert isinstance(model, torch.nn.Module)


def test_federation_message_names_the_base_by_digest_only(base_file: Path):
    from flwr.app import ConfigRecord, RecordDict

    from fedseed.federation import protocol

    digest = BaseStore.default().add(base_file).digest
    recipe_bytes = canonical_bytes(tiny(digest))
    # What fedseed.app.wire.instruction puts in a train message to a device.
    content = RecordDict({protocol.RECORD: ConfigRecord({protocol.META: recipe_bytes})})
    assert len(content.array_records) == 0
    assert len(recipe_bytes) < 4096 < base_file.stat().st_size
    assert digest.encode() in recipe_bytes
    from fedseed.data.builtin import load_toy_text

    child = personalize_examples(tiny(digest), load_toy_text(rows=60)).recipe
    assert child.init.base == digest and child.lineage is not None  # lineage keeps the base
    with pytest.raises(VerificationError):
        corrupt = BaseStore.default().resolve(digest).path
        corrupt.write_bytes(corrupt.read_bytes()[:-1] + b"\0")
        assemble(tiny(digest))


def test_simulate_refuses_a_missing_base_before_any_node(fedseed, tmp_path: Path):
    missing = "sha256:" + "ef" * 32
    recipe = write_recipe(tmp_path / "r.json", tiny(missing))
    run = fedseed("simulate", "--recipe", str(recipe), "--dataset", "toy-text",
                  "--clients", "2", "--rounds", "1", "--home", str(tmp_path / "run"))
    assert run.code == 2 and missing in run.err
    assert not (tmp_path / "run").exists()
