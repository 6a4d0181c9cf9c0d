"""Recipe model: built-ins, canonical bytes, digests, bounds, cross-field rules."""

from __future__ import annotations

import json

import pytest

from fedseed.errors import RecipeError
from fedseed.recipe import (
    builtin_names,
    canonical_bytes,
    canonical_dict,
    load_builtin,
    parse_recipe,
    recipe_digest,
    recipe_from_dict,
)

BUILTINS = ["charlm-gpt2-tiny", "digits-mlp", "image-cnn-small", "text-bert-tiny", "text-ngram"]


def test_builtin_recipes_are_the_five_named_ones():
    assert builtin_names() == BUILTINS


@pytest.mark.parametrize("name", BUILTINS)
def test_canonical_bytes_are_a_fixed_point(name):
    recipe = load_builtin(name)

    first = canonical_bytes(recipe)
    again = canonical_bytes(parse_recipe(first))

    assert again == first
    assert recipe_digest(parse_recipe(first)) == recipe_digest(recipe)


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_recipe_without_evidence_is_under_4_kb(name):
    assert len(canonical_bytes(load_builtin(name))) < 4096


def test_canonical_bytes_are_sorted_compact_utf8():
    raw = canonical_bytes(load_builtin("digits-mlp"))

    parsed = json.loads(raw)

    assert raw == json.dumps(parsed, sort_keys=True, separators=(",", ":"),
                             ensure_ascii=False).encode("utf-8")
    assert b" " not in raw.replace(b"Two-layer MLP for scikit-learn's 8x8 handwritten digits "
                                   b"(64 features, 10 classes).", b"")


def test_key_order_and_whitespace_do_not_change_the_digest():
    data = canonical_dict(load_builtin("digits-mlp"))
    reordered = json.dumps(dict(reversed(list(data.items()))), indent=4)

    assert recipe_digest(parse_recipe(reordered)) == recipe_digest(load_builtin("digits-mlp"))


def test_digest_changes_with_any_field():
    data = canonical_dict(load_builtin("digits-mlp"))
    data["optimizer"] = {**data["optimizer"], "lr": 0.002}

    assert recipe_digest(recipe_from_dict(data)) != recipe_digest(load_builtin("digits-mlp"))


def test_nested_null_survives_canonicalisation():
    data = canonical_dict(load_builtin("digits-mlp"))
    data["budget"] = {**data["budget"], "grad_clip": None}

    recipe = parse_recipe(canonical_bytes(recipe_from_dict(data)))

    assert recipe.budget.grad_clip is None


def _mutated(path: str, value, name: str = "digits-mlp") -> str:
    data = canonical_dict(load_builtin(name))
    section, _, field = path.partition(".")
    if field:
        data[section] = {**data[section], field: value}
    else:
        data[section] = value
    return json.dumps(data)


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("optimizer.lr", -0.1, "optimizer.lr"),
        ("optimizer.lr", 0.0, "optimizer.lr"),
        ("budget.batch_size", 0, "budget.batch_size"),
        ("budget.max_steps", 10**9, "budget.max_steps"),
        ("budget.max_steps", "100", "budget.max_steps"),
        ("init.seed", -1, "init.seed"),
        ("task.num_labels", 1, "task.num_labels"),
        ("schedule.name", "exponential", "schedule.name"),
        ("optimizer.name", "lion", "optimizer"),
        ("architecture.name", "resnet", "architecture"),
    ],
)
def test_out_of_range_values_name_the_field(path, value, expected):
    with pytest.raises(RecipeError) as info:
        parse_recipe(_mutated(path, value), "r.json")

    message = info.value.diagnostics()
    assert message.startswith("r.json: ")
    assert expected in message


def test_unknown_field_is_rejected_with_its_path():
    data = canonical_dict(load_builtin("digits-mlp"))
    data["budget"] = {**data["budget"], "max_stepz": 3}

    with pytest.raises(RecipeError, match=r"budget\.max_stepz: unknown field"):
        recipe_from_dict(data)


def test_unknown_top_level_field_is_rejected():
    data = canonical_dict(load_builtin("digits-mlp")) | {"weights": [1, 2, 3]}

    with pytest.raises(RecipeError, match="weights: unknown field"):
        recipe_from_dict(data)


def test_malformed_json_names_line_and_column():
    with pytest.raises(RecipeError, match=r"bad\.json: malformed JSON at line 1 column"):
        parse_recipe(b'{"schema": ', "bad.json")


def test_duplicate_keys_are_rejected():
    raw = canonical_bytes(load_builtin("digits-mlp"))
    doubled = raw[:-1] + b',"name":"other"}'

    with pytest.raises(RecipeError, match="duplicate key 'name'"):
        parse_recipe(doubled)


def test_nan_is_rejected():
    text = _mutated("optimizer.lr", 0.001).replace("0.001", "NaN")

    with pytest.raises(RecipeError, match="optimizer.lr"):
        parse_recipe(text)


def test_oversized_recipe_is_rejected_before_parsing():
    with pytest.raises(RecipeError, match="over the"):
        parse_recipe(b" " * (1 << 20 + 1))


def test_wrong_schema_version_is_rejected():
    with pytest.raises(RecipeError, match="schema"):
        parse_recipe(_mutated("schema", "fedseed.recipe/v0"))


@pytest.mark.parametrize(
    ("name", "path", "value", "expected"),
    [
        ("text-bert-tiny", "task", {"kind": "language-modeling", "modality": "text",
                                    "metric": "perplexity"}, "cannot do task.kind"),
        ("digits-mlp", "task", {"kind": "classification", "modality": "text",
                                "num_labels": 10, "metric": "accuracy"}, "task.modality 'text'"),
        ("digits-mlp", "tokenizer", {"kind": "bytes", "max_length": 64, "lowercase": False},
         "takes no tokenizer"),
        ("text-bert-tiny", "tokenizer", None, "needs a tokenizer"),
        ("charlm-gpt2-tiny", "task", {"kind": "language-modeling", "modality": "text",
                                      "metric": "accuracy"}, "perplexity"),
    ],
)
def test_architecture_must_fit_the_task(name, path, value, expected):
    data = canonical_dict(load_builtin(name))
    if value is None:
        data.pop(path)
    else:
        data[path] = value

    with pytest.raises(RecipeError, match=expected):
        recipe_from_dict(data)


def test_heads_must_divide_width():
    data = canonical_dict(load_builtin("text-bert-tiny"))
    data["architecture"]["config"]["num_attention_heads"] = 3

    with pytest.raises(RecipeError, match="not divisible"):
        recipe_from_dict(data)


def test_vocab_smaller_than_tokenizer_is_rejected():
    data = canonical_dict(load_builtin("charlm-gpt2-tiny"))
    data["architecture"]["config"]["vocab_size"] = 200

    with pytest.raises(RecipeError, match="vocab_size 200"):
        recipe_from_dict(data)


def test_recipes_are_frozen():
    recipe = load_builtin("digits-mlp")

    with pytest.raises(Exception, match="frozen"):
        recipe.name = "other"  # type: ignore[misc]


def test_json_schema_describes_every_section():
    from fedseed.recipe import Recipe

    schema = Recipe.model_json_schema(by_alias=True)

    assert {"schema", "task", "architecture", "optimizer", "budget", "evidence",
            "lineage", "search_space"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False


def test_diverged_is_written_only_when_true():
    from support import synthetic_reply

    reply = synthetic_reply({}, 0.5).recipe
    old = canonical_bytes(reply)  # evidence as written before the field existed
    diverged = reply.model_copy(update={"evidence": reply.evidence.model_copy(
        update={"diverged": True})})

    assert b"diverged" not in old and parse_recipe(old).evidence.diverged is False
    assert b'"diverged":true' in canonical_bytes(diverged)
    assert parse_recipe(canonical_bytes(diverged)) == diverged
    with pytest.raises(RecipeError, match="diverged"):
        parse_recipe(old.replace(b'"best_step"', b'"diverged":"yes","best_step"'))


def test_schema_field_spelled_by_its_python_name_is_an_unknown_field():
    # Found by `fedseed bench robustness`: "schema_" (the attribute name) was read as
    # "schema", a second spelling of the same recipe outside the published schema.
    data = canonical_dict(load_builtin("digits-mlp"))
    data["schema_"] = data.pop("schema")

    with pytest.raises(RecipeError, match="schema_: unknown field"):
        parse_recipe(json.dumps(data))
