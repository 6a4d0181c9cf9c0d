"""The hashed n-gram tokenizer and the ngram-bag architecture (text-ngram recipe)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support import HANG_GUARD

from fedseed.data.ngrams import features, ngram_ids
from fedseed.errors import RecipeError
from fedseed.recipe import canonical_dict, load_builtin, parse_recipe, recipe_from_dict
from fedseed.recipe.task import HashedNgramTokenizer

TOKENIZER = HashedNgramTokenizer(buckets=1000, word_ngrams=(1, 2), char_ngrams=(2, 3))
TEXT = "Don't panic!"
#: The ids of TEXT under TOKENIZER: fixed by the hashing's definition (docs/recipes.md).
IDS = [229, 241, 43, 844, 269, 639, 936, 913, 4, 507, 988, 730, 159, 814, 968, 493, 624,
       983, 702, 677, 413, 901, 808, 825, 172, 360, 103, 748, 600, 196]


def test_features_follow_the_documented_order():
    got = list(features(TEXT, TOKENIZER))

    assert got[:9] == ["wdon", "w'", "wt", "wpanic", "w!",
                       "wdon\x1f'", "w'\x1ft", "wt\x1fpanic", "wpanic\x1f!"]
    assert got[9:17] == ["c<d", "cdo", "con", "cn>", "c<do", "cdon", "con>", "c<t"]
    assert "c<!" not in got and "c<'" not in got  # no character n-grams of punctuation


def test_a_fixed_text_gives_fixed_ids_in_this_and_another_process():
    assert ngram_ids(TEXT, TOKENIZER) == IDS
    code = ("from fedseed.data.ngrams import ngram_ids\n"
            "from fedseed.recipe.task import HashedNgramTokenizer as T\n"
            "print(ngram_ids(\"Don't panic!\", T(buckets=1000, word_ngrams=(1, 2), "
            "char_ngrams=(2, 3))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=HANG_GUARD, env={"PYTHONHASHSEED": "123"})
    assert out.stdout.strip() == str(IDS)


def test_max_tokens_and_lowercase():
    short = HashedNgramTokenizer(buckets=1000, max_tokens=8)
    cased = HashedNgramTokenizer(buckets=1000, lowercase=False)

    assert len(ngram_ids(TEXT * 20, short)) == 8
    assert ngram_ids("PANIC", HashedNgramTokenizer(buckets=1000)) == \
        ngram_ids("panic", HashedNgramTokenizer(buckets=1000))
    assert ngram_ids("PANIC", cased) != ngram_ids("panic", cased)


def _with_tokenizer(**fields):
    data = canonical_dict(load_builtin("text-ngram"))
    data["tokenizer"] = {**data["tokenizer"], **fields}
    return data


@pytest.mark.parametrize(("fields", "message"), [
    ({"buckets": 8}, "tokenizer.buckets: Input should be greater than or equal to 16 (got 8)"),
    ({"buckets": 1 << 25}, "tokenizer.buckets: Input should be less than or equal to"),
    ({"char_ngrams": [4, 2]}, "tokenizer.char_ngrams [4, 2] is inverted"),
    ({"word_ngrams": None, "char_ngrams": None}, "set at least one of them"),
    ({"kind": "wordpiece"}, "tokenizer: unknown tokenizer kind; supported kinds are bytes"),
])
def test_bad_tokenizer_is_one_clear_line(fields, message):
    with pytest.raises(RecipeError) as caught:
        recipe_from_dict(_with_tokenizer(**fields))

    text = str(caught.value)
    assert message in text and "\n" not in text


def test_tokenizer_and_architecture_must_pair():
    bert_with_ngrams = canonical_dict(load_builtin("text-bert-tiny"))
    bert_with_ngrams["tokenizer"] = canonical_dict(load_builtin("text-ngram"))["tokenizer"]
    bag_with_bytes = _with_tokenizer()
    bag_with_bytes["tokenizer"] = {"kind": "bytes", "max_length": 128, "lowercase": False}

    with pytest.raises(RecipeError, match="tokenizer.kind 'hashed-ngrams' cannot feed "
                                          "architecture transformers:bert"):
        recipe_from_dict(bert_with_ngrams)
    with pytest.raises(RecipeError, match="use tokenizer.kind 'hashed-ngrams'"):
        recipe_from_dict(bag_with_bytes)


def test_recipe_assembles_with_the_expected_parameter_count():
    from fedseed.assemble import assemble, parameter_count, state_dict_digest

    recipe = load_builtin("text-ngram")
    expected = (65536 + 1) * 32 + 32 * 2 + 2

    model = assemble(recipe)

    assert parameter_count(recipe) == expected
    assert sum(p.numel() for p in model.parameters()) == expected
    assert float(model.embedding.weight[0].detach().abs().sum()) == 0.0  # the padding row
    assert float(model.embedding.weight.detach().abs().max()) <= 1 / 32
    assert state_dict_digest(assemble(recipe)) == state_dict_digest(model)


def test_personalize_text_ngram_end_to_end(fedseed, tmp_path):
    out = tmp_path / "out"

    run = fedseed("personalize", "text-ngram", "--data", "toy-text", "--out", str(out),
                  "--set", "budget.max_steps=20", "--set", "budget.eval_every=10")

    assert run.code == 0, run.err
    child = parse_recipe((out / "recipe.json").read_bytes())
    assert child.tokenizer.kind == "hashed-ngrams"
    assert child.evidence.steps == 20
    # toy-text is separable by its words: a working bag of n-grams learns it.
    assert child.evidence.final.test_metric >= 0.9
    assert (out / "model.safetensors").stat().st_size > 4 * 65537 * 32
