"""Loading local files with `datasets`, checking them against a recipe, splitting."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fedseed.data import Examples, load_digits, load_examples, load_toy_text, split_examples
from fedseed.errors import DataError
from fedseed.recipe import load_builtin
from fedseed.recipe.training import Split

MLP = load_builtin("digits-mlp")
BERT = load_builtin("text-bert-tiny")
GPT = load_builtin("charlm-gpt2-tiny")


def _digits_rows(n: int = 40) -> list[dict]:
    digits = load_digits()
    return [{**{f"p{j}": float(v) for j, v in enumerate(digits.features[i])},
             "label": int(digits.labels[i])} for i in range(n)]


def _write_csv(path, rows: list[dict]) -> None:
    import csv

    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_csv_jsonl_parquet_and_save_to_disk_load_the_same_rows(tmp_path):
    import datasets

    rows = _digits_rows()
    _write_csv(tmp_path / "d.csv", rows)
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    table = datasets.Dataset.from_list(rows)
    table.to_parquet(str(tmp_path / "d.parquet"))
    table.save_to_disk(str(tmp_path / "d_disk"))

    loaded = [load_examples(str(tmp_path / name), MLP)
              for name in ("d.csv", "d.jsonl", "d.parquet", "d_disk")]

    for examples in loaded:
        assert examples.features.shape == (40, 64)
        np.testing.assert_allclose(examples.features, loaded[0].features)
        np.testing.assert_array_equal(examples.labels, load_digits().labels[:40])


def test_text_columns_are_selectable(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(json.dumps({"body": f"text {i}", "y": i % 2}) for i in range(10)))

    examples = load_examples(str(path), BERT, text_column="body", label_column="y")

    assert examples.texts[3] == "text 3"
    assert examples.labels.tolist() == [i % 2 for i in range(10)]


def test_language_modeling_needs_no_labels(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("text\nhello there\ngeneral kenobi\n")

    examples = load_examples(str(path), GPT)

    assert examples.texts == ("hello there", "general kenobi")
    assert examples.labels is None


@pytest.mark.parametrize(
    ("content", "recipe", "kwargs", "expected"),
    [
        ("text\nhello\n", BERT, {}, "no label column 'label'"),
        ("label\n1\n", BERT, {}, "no text column 'text'"),
        ("body,label\nhi,1\n", BERT, {"text_column": "text"}, "pass --text-column"),
        ("text,label\nhi,7\n", BERT, {}, "value 7 at row 0, outside 0..1"),
        ("text,label\nhi,-1\n", BERT, {}, "value -1 at row 0"),
        ("text,label\nhi,yes\n", BERT, {}, "holds text labels, but recipe 'text-bert-tiny'"),
        ("a,b,label\n1,2,0\n", MLP, {}, "2 feature columns, but recipe 'digits-mlp' expects 64"),
        ("text,label\nhello,1\n", MLP, {}, "column 'text' holds text values"),
        ("label\n", BERT, {}, "empty"),
    ],
)
def test_bad_files_name_file_column_and_value(tmp_path, content, recipe, kwargs, expected):
    path = tmp_path / "bad.csv"
    path.write_text(content)

    with pytest.raises(DataError) as info:
        load_examples(str(path), recipe, **kwargs)

    assert expected in info.value.diagnostics()
    assert str(path) in info.value.diagnostics()


def test_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match="nope.csv: data file does not exist"):
        load_examples(str(tmp_path / "nope.csv"), MLP)


def test_unsupported_suffix_is_named(tmp_path):
    path = tmp_path / "data.xlsx"
    path.write_text("x")

    with pytest.raises(DataError, match="unsupported file type '.xlsx'"):
        load_examples(str(path), MLP)


def test_malformed_jsonl_is_one_data_error(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "a", "label": 1}\n{not json\n')

    with pytest.raises(DataError, match="cannot read as a dataset"):
        load_examples(str(path), BERT)


def test_missing_feature_value_is_named(tmp_path):
    rows = _digits_rows(5)
    _write_csv(tmp_path / "d.csv", rows)
    text = (tmp_path / "d.csv").read_text().splitlines()
    text[3] = "," + text[3].split(",", 1)[1]
    (tmp_path / "d.csv").write_text("\n".join(text))

    with pytest.raises(DataError, match="column 'p0' row 2 is missing"):
        load_examples(str(tmp_path / "d.csv"), MLP)


def test_builtin_names_need_no_files():
    assert len(load_examples("digits", MLP)) == 1797
    assert len(load_examples("toy-text", BERT)) == 600


def test_split_is_deterministic_disjoint_and_complete():
    examples = load_digits()

    a = split_examples(examples, Split(seed=3))
    b = split_examples(examples, Split(seed=3))
    c = split_examples(examples, Split(seed=4))

    np.testing.assert_array_equal(a.train.labels, b.train.labels)
    assert not np.array_equal(a.train.features, c.train.features)
    rows = {tuple(r) for part in (a.train, a.validation, a.test) for r in part.features}
    assert sum(len(p) for p in (a.train, a.validation, a.test)) == 1797
    assert len(a.validation) == round(1797 * 0.15)
    assert len(rows) == len({tuple(r) for r in examples.features})


def test_too_few_rows_to_split_is_a_data_error():
    tiny = Examples(source="tiny", features=np.zeros((2, 64), np.float32),
                    labels=np.zeros(2, np.int64))

    with pytest.raises(DataError, match="too few to split"):
        split_examples(tiny, Split())


def test_toy_text_is_deterministic_and_balanced():
    a, b = load_toy_text(), load_toy_text()

    assert a.texts == b.texts
    assert 0.35 < a.labels.mean() < 0.65


def test_builtin_digits_are_scikit_learns_without_importing_it():
    import subprocess
    import sys

    from sklearn.datasets import load_digits as sklearn_digits

    reference = sklearn_digits()
    digits = load_digits()

    assert digits.features.dtype == np.float32 and digits.labels.dtype == np.int64
    np.testing.assert_array_equal(digits.features,
                                  (reference.data.astype(np.float32) / 16.0).astype(np.float32))
    np.testing.assert_array_equal(digits.labels, reference.target)
    # Every simulated node loads digits: SciPy (under sklearn.datasets) stays unloaded.
    probe = ("import sys; from fedseed.data import load_digits; load_digits(); "
             "print(sorted(m for m in ('sklearn', 'scipy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
