"""The standard-library reader of plain CSV and JSON Lines files gives what `datasets`
gives, column by column and value by value, and leaves every other file to it."""

from __future__ import annotations

import csv
import json
import math
import random

import numpy as np
import pytest

from fedseed.data import load_examples
from fedseed.data._plain import _NA, read_plain
from fedseed.errors import DataError
from fedseed.recipe import load_builtin

BERT = load_builtin("text-bert-tiny")
MLP = load_builtin("digits-mlp")

PLAIN = {
    "text.csv": "text,label\nhello there,1\nworld,0\n",
    "crlf.csv": "text,label\r\nhello,1\r\nworld,0\r\n",
    "no_final_newline.csv": "text,label\nhello,1\nworld,0",
    "quoting.csv": 'text,label\n"a, b",1\n"he said ""hi""",0\n"two\nlines",1\nab"c,0\n',
    "quoted_numbers.csv": 'text,label\nhello,"1"\nworld,"0"\n',
    "spaces_in_text.csv": "text,label\n  hello  ,1\nworld ,0\n",
    "unicode.csv": "text,label\nh\u00e9llo \u4e16\u754c \U0001f642,1\n#hash,0\n",
    "dates_stay_text.csv": "text,label\n2020-01-01,1\n2021-02-03,0\n",
    "numeric_text.csv": "text,label\n1,1\n2,0\n",  # pandas reads int64: "not text"
    "decimals.csv": "a,b,label\n0.5,1e3,1\n-0.0,2.5E-3,0\n0.0625,123456.789012,1\n",
    "float_labels.csv": "text,label\nx,1.0\ny,0.0\n",
    "leading_zeros.csv": "a,label\n007,1\n-0,0\n",
    "numeric_header.csv": "0,1,label\n1,2,0\n",
    "text.jsonl": '{"text": "a", "label": 1}\n{"text": "b", "label": 0}\n',
    "crlf.jsonl": '{"text": "a", "label": 1}\r\n{"text": "b", "label": 0}\r\n',
    "escapes.jsonl": '{"text": "a\\u00e9\\n\\"", "label": 1}\n{"text": "b", "label": 0}\n',
    "numbers_as_text.jsonl": '{"text": "1", "label": 1}\n{"text": "2", "label": 0}\n',
    "decimals.jsonl": '{"f": 0.1, "label": 1}\n{"f": 0.30000000000000004, "label": 0}\n',
    "times_stay_text.jsonl": '{"text": "10:00:00", "label": 1}\n{"text": "b", "label": 0}\n',
    "lines.json": '{"text": "a", "label": 1}\n{"text": "b", "label": 0}',
}

NOT_PLAIN = {
    "missing.csv": "text,label\n,1\nabc,0\n",
    "na_token.csv": "text,label\nNA,1\nabc,0\n",
    "nan_like.csv": "text,label\nNAN,1\nnone,0\n",
    "boolean.csv": "text,label,flag\nx,1,True\ny,0,False\n",
    "mixed_int_float.csv": "a,label\n1,1\n2.5,0\n",
    "mixed_text_number.csv": "text,label\n1,1\nabc,0\n",
    "blank_line.csv": "text,label\nx,1\n\ny,0\n",
    "ragged.csv": "text,label\nx,1,2\ny,0\n",
    "duplicate_header.csv": "a,a,label\n1,2,0\n",
    "blank_header.csv": ",label\nx,0\n",
    "bom.csv": "\ufefftext,label\nx,1\n",
    "carriage_return_in_text.csv": 'text,label\r\n"a\r\nb",1\r\nc,0\r\n',
    "repaired_quote.csv": 'text,label\n"ab"c,1\nd,0\n',
    "unterminated_quote.csv": 'text,label\n"x,1\ny,0\n',
    "plus_sign.csv": "text,label\nhello,+1\nworld,0\n",
    "space_around_number.csv": "text,label\nhello, 1\nworld,0\n",
    "infinity.csv": "a,label\ninf,1\n1.0,0\n",
    "too_many_digits.csv": "a,label\n0.3333333333333333,1\n0.1,0\n",
    "beyond_int64.csv": "a,label\n99999999999999999999,1\n1,0\n",
    "non_ascii_digits.csv": "text,label\n\u0661\u0662,1\nx,0\n",
    "whitespace_value.csv": "text,label\n   ,1\nx,0\n",
    "header_only.csv": "text,label\n",
    "missing_key.jsonl": '{"text": "a", "label": 1}\n{"text": "b"}\n',
    "key_order.jsonl": '{"text": "a", "label": 1}\n{"label": 0, "text": "b"}\n',
    "null.jsonl": '{"text": null, "label": 1}\n{"text": "b", "label": 0}\n',
    "boolean.jsonl": '{"text": "a", "label": true}\n{"text": "b", "label": false}\n',
    "nested.jsonl": '{"text": ["a"], "label": 1}\n{"text": ["b"], "label": 0}\n',
    "mixed_types.jsonl": '{"text": 1, "label": 1}\n{"text": "b", "label": 0}\n',
    "mixed_int_float.jsonl": '{"f": 1, "label": 1}\n{"f": 1.5, "label": 0}\n',
    "array.json": '[{"text": "a", "label": 1}, {"text": "b", "label": 0}]',
    "pretty.json": '{\n "text": "a",\n "label": 1\n}\n',
    "blank_line.jsonl": '{"text": "a", "label": 1}\n\n{"text": "b", "label": 0}\n',
    "timestamps.jsonl": '{"text": "2020-01-01", "label": 1}\n{"text": "2021-02-03", "label": 0}\n',
    "lone_surrogate.jsonl": '{"text": "a\\ud800", "label": 1}\n{"text": "b", "label": 0}\n',
    "duplicate_key.jsonl": '{"text": "a", "text": "c", "label": 1}\n{"text": "b", "label": 0}\n',
    "nan.jsonl": '{"f": NaN, "label": 1}\n{"f": 1.0, "label": 0}\n',
    "beyond_int64.jsonl": '{"f": 99999999999999999999, "label": 1}\n{"f": 1, "label": 0}\n',
}


def _with_datasets(path):
    import datasets

    datasets.disable_progress_bars()
    reader = datasets.Dataset.from_csv if path.suffix == ".csv" else datasets.Dataset.from_json
    return reader(str(path), keep_in_memory=True)


def _table(table):
    """Names, types (string and large_string alike: both are text to fedseed), values."""
    kinds = {n: str(getattr(table.features[n], "dtype", table.features[n])) for n in
             table.column_names}
    kinds = {n: "string" if k in ("string", "large_string") else k for n, k in kinds.items()}
    values = {n: [(type(v).__name__ if not isinstance(v, int) else "int", v,
                   math.copysign(1.0, v) if isinstance(v, float) else None)
                  for v in table[n]] for n in table.column_names}
    return list(table.column_names), kinds, values


def _write(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8", "surrogatepass"))
    return path


@pytest.mark.parametrize("name", sorted(PLAIN))
def test_a_plain_file_reads_exactly_as_datasets_reads_it(tmp_path, name):
    path = _write(tmp_path, name, PLAIN[name])

    plain = read_plain(path)

    assert plain is not None
    assert _table(plain) == _table(_with_datasets(path))


@pytest.mark.parametrize("name", sorted(NOT_PLAIN))
def test_anything_else_is_left_to_datasets(tmp_path, name):
    path = _write(tmp_path, name, NOT_PLAIN[name])

    assert read_plain(path) is None


def test_bad_utf8_is_left_to_datasets(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("text,label\nh\xe9llo,1\n".encode("latin-1"))

    assert read_plain(path) is None


def test_random_plain_files_match_datasets_across_its_chunks(tmp_path):
    # 10,050 rows crosses datasets' 10,000-row CSV chunks; 70 columns make pandas read
    # a chunk in several pieces. Decimals have up to 15 digits, texts any characters.
    rng = random.Random(7)
    alphabet = "abc xyz,\"'\n\t;:é世界🙂\\#-"

    def decimal() -> str:
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(2, 15)))
        cut = rng.randint(1, len(digits) - 1)
        sign = "-" if rng.random() < 0.3 else ""
        return f"{sign}{digits[:cut]}.{digits[cut:]}" + (f"e{rng.randint(-5, 5)}"
                                                        if rng.random() < 0.3 else "")

    for name, (rows, width) in {"long.csv": (10_050, 3), "wide.csv": (8_300, 70),
                                "long.jsonl": (10_050, 3)}.items():
        kinds = ["text", "int", "float"] + [rng.choice(["int", "float"]) for _ in range(width - 3)]
        table = [[("x" + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))))
                  if k == "text" else str(rng.randint(-10**12, 10**12)) if k == "int"
                  else decimal() for k in kinds] for _ in range(rows)]
        path = tmp_path / name
        names = [f"c{i}" for i in range(width)]
        if path.suffix == ".csv":
            with open(path, "w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(names)
                writer.writerows(table)
        else:
            numbers = {"text": str, "int": int, "float": float}
            path.write_text("\n".join(json.dumps({n: numbers[k](v) for n, k, v in
                                                   zip(names, kinds, row, strict=True)})
                                      for row in table))

        plain = read_plain(path)

        assert plain is not None, name
        assert _table(plain) == _table(_with_datasets(path)), name


def test_the_na_tokens_are_pandas_own():
    from pandas._libs.parsers import STR_NA_VALUES

    assert set(STR_NA_VALUES) == _NA


@pytest.mark.parametrize(("content", "recipe", "kwargs"), [
    ("text,label\nhi,1\nyo,0\n", BERT, {}),
    ("body,y\nhi,1\nyo,0\n", BERT, {"text_column": "body", "label_column": "y"}),
    ("text,label\nhi,7\n", BERT, {}),
    ("text,label\nhi,1.5\n", BERT, {}),
    ("text,label\n1,1\n2,0\n", BERT, {}),
    ("text,label\nhello,yes\n", BERT, {}),
    ("text\nhello\n", BERT, {}),
    ("a,b,label\n1,2,0\n", MLP, {}),
    ("text,label\nhello,1\n", MLP, {}),
    ("a,label\nNA,1\n", MLP, {}),
])
def test_load_examples_gives_the_same_examples_or_error_either_way(tmp_path, monkeypatch,
                                                                    content, recipe, kwargs):
    path = tmp_path / "data.csv"
    path.write_text(content)
    plain = _outcome(path, recipe, kwargs)
    monkeypatch.setattr("fedseed.data._plain.read_plain", lambda path: None)

    assert plain == _outcome(path, recipe, kwargs)


def test_digits_as_csv_load_the_same_either_way(tmp_path, monkeypatch):
    from fedseed.bench.peak_memory import write_csv

    path = write_csv(load_examples("digits", MLP), tmp_path)
    assert read_plain(path) is not None
    plain = load_examples(str(path), MLP)
    monkeypatch.setattr("fedseed.data._plain.read_plain", lambda path: None)

    with_datasets = load_examples(str(path), MLP)

    np.testing.assert_array_equal(plain.features, with_datasets.features)
    np.testing.assert_array_equal(plain.labels, with_datasets.labels)


def _outcome(path, recipe, kwargs):
    try:
        examples = load_examples(str(path), recipe, **kwargs)
    except DataError as e:
        return "error", e.diagnostics()
    return ("examples", examples.texts,
            None if examples.features is None else examples.features.tolist(),
            None if examples.labels is None else examples.labels.tolist())
