"""Plain CSV and JSON Lines files, read with the standard library.

``datasets`` reads CSV through pandas and JSON Lines through pyarrow; importing it
costs about 150 MiB of resident memory, a third of a small device's budget for
personalization. Most files a user brings are *plain*: a header (or first object) of
distinct names, every row with the same fields, and each column uniformly integers,
uniformly decimals or uniformly text. For such a file :func:`read_plain` gives the
column names, types and values ``datasets`` gives; for any other file it returns
``None`` and the caller reads the file with ``datasets`` as before, so what happens
with an unusual file (missing values, booleans, mixed columns, nested JSON, a JSON
array, odd quoting, a byte-order mark, bad UTF-8, ...), error messages included,
does not change.

What "the same" rests on, column by column:

- integers: ``-?[0-9]+`` within int64, which pandas and pyarrow read as int64;
- decimals in CSV: ``-?[0-9]+(.[0-9]+)?(e[-+]?[0-9]+)?`` with a point or an
  exponent, at most 15 digits and a power of ten within 1e±22. The integer mantissa
  is then exact in a double and one multiplication or division by an exact power of
  ten rounds correctly, so pandas' parser (the fast_float one or the older
  ``precise_xstrtod``) and :func:`float` agree to the bit. JSON decimals of any
  length: pyarrow rounds them correctly, as :func:`float` does;
- text: anything that none of pandas' converters would turn into a number, a
  boolean or a missing value (its default ``na_values``).

``tests/data/test_plain.py`` checks this against ``datasets`` itself, file by file.
"""

from __future__ import annotations

import csv
import json
import math
import re
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# pandas' default ``na_values`` (``pandas._libs.parsers.STR_NA_VALUES``).
_NA = frozenset({"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan",
                 "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a",
                 "nan", "null"})
_INT = re.compile(r"-?[0-9]+")
_DECIMAL = re.compile(r"-?([0-9]+)(?:\.([0-9]+))?(?:[eE]([-+]?[0-9]{1,4}))?")
_INT64 = (-(2 ** 63), 2 ** 63 - 1)
_INT_KIND, _FLOAT_KIND, _TEXT_KIND = "int64", "float64", "string"


class _NotPlain(Exception):
    """The file needs ``datasets``: something in it is outside the plain subset."""


@dataclass(frozen=True)
class _Value:
    dtype: str


@dataclass
class PlainTable:
    """The part of a ``datasets.Dataset`` that :mod:`fedseed.data.local` reads:
    ``column_names``, ``num_rows``, ``features[name].dtype`` and ``table[name]``."""

    column_names: list[str]
    num_rows: int
    features: dict[str, _Value]
    columns: dict[str, Sequence[Any]] = field(repr=False)

    def __getitem__(self, name: str) -> Sequence[Any]:
        return self.columns[name]


def read_plain(path: Path) -> PlainTable | None:
    """``path`` (a ``.csv``, ``.jsonl`` or ``.json`` file) as a table, or ``None``
    when the file is not plain and must be read with ``datasets``."""
    readers = {".csv": _read_csv, ".jsonl": _read_json_lines, ".json": _read_json_lines}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        return None
    try:
        with open(path, "rb") as handle:
            if handle.read(3) == b"\xef\xbb\xbf":  # pandas drops a BOM; leave it to it
                return None
        names, columns = reader(path)
    except (_NotPlain, OSError, UnicodeError, csv.Error, ValueError, RecursionError):
        return None
    if not columns or columns[0].kind is None:
        return None  # no rows: datasets says how the file is empty
    pairs = list(zip(names, columns, strict=True))
    return PlainTable(column_names=names, num_rows=len(columns[0].values),
                      features={n: _Value(c.kind or _TEXT_KIND) for n, c in pairs},
                      columns={n: c.values for n, c in pairs})


class _Column:
    """One column's values, kept compact (``array`` for numbers) and of one kind."""

    def __init__(self) -> None:
        self.kind: str | None = None
        self.values: Any = None

    def add(self, kind: str, value: Any) -> None:
        if self.kind is None:
            self.kind = kind
            self.values = {_INT_KIND: array("q"), _FLOAT_KIND: array("d")}.get(kind, [])
        elif kind != self.kind:  # pandas and pyarrow would promote or mix: not plain
            raise _NotPlain
        self.values.append(value)


def _read_csv(path: Path) -> tuple[list[str], list[_Column]]:
    # The excel dialect is pandas' default (',' '"', doubled quotes, no escape, no
    # initial-space skipping); strict turns quoting pandas repairs silently into errors.
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, strict=True)
        names = next(reader, None)
        if not names or len(set(names)) != len(names) or any(not n.strip() for n in names):
            raise _NotPlain  # pandas would rename duplicates and blanks ("a.1", "Unnamed: 0")
        columns = [_Column() for _ in names]
        for row in reader:
            if len(row) != len(names):  # blank line, ragged row or an index column
                raise _NotPlain
            for column, raw in zip(columns, row, strict=True):
                column.add(*_csv_value(raw))
    return names, columns


def _csv_value(raw: str) -> tuple[str, Any]:
    stripped = raw.strip()
    if not stripped or raw in _NA or stripped in _NA or "\r" in raw \
            or stripped.lower() in ("true", "false"):
        raise _NotPlain  # missing, boolean, or a line-ending pandas may treat otherwise
    if _INT.fullmatch(raw):
        number = int(raw)
        if not _INT64[0] <= number <= _INT64[1]:
            raise _NotPlain
        return _INT_KIND, number
    if _DECIMAL.fullmatch(raw):
        return _FLOAT_KIND, _exact_decimal(raw)
    try:
        float(raw)
    except ValueError:
        return _TEXT_KIND, raw
    raise _NotPlain  # a number in a form pandas may read differently ("+1", " 2", "inf")


def _exact_decimal(raw: str) -> float:
    match = _DECIMAL.fullmatch(raw)
    if match is None or ("." not in raw and match.group(3) is None):
        raise _NotPlain
    whole, fraction, exponent = match.group(1), match.group(2) or "", match.group(3)
    power = int(exponent or 0) - len(fraction)
    if len(whole) + len(fraction) > 15 or abs(power) > 22:
        raise _NotPlain
    return float(raw)


def _read_json_lines(path: Path) -> tuple[list[str], list[_Column]]:
    names: list[str] | None = None
    columns: list[_Column] = []
    with open(path, "rb") as handle:
        if handle.read(1) == b"[":  # a JSON array: datasets reads it its own way
            raise _NotPlain
        handle.seek(0)
        for line in handle:
            text = line.decode("utf-8")
            if not text.strip():
                raise _NotPlain
            row = json.loads(text, object_pairs_hook=_unique_pairs, parse_float=_json_float,
                             parse_int=_json_int, parse_constant=_reject)
            if not isinstance(row, dict) or not row:
                raise _NotPlain
            if names is None:
                names = list(row)
                columns = [_Column() for _ in names]
            elif list(row) != names:  # pyarrow would fill missing keys with nulls
                raise _NotPlain
            for column, value in zip(columns, row.values(), strict=True):
                column.add(_json_kind(value, "\\u" in text), value)
    return names or [], columns


def _json_kind(value: Any, escaped: bool) -> str:
    if isinstance(value, str):
        if escaped:
            value.encode("utf-8")  # a lone surrogate escape raises UnicodeError: not plain
        if _looks_like_timestamp(value):
            raise _NotPlain  # pyarrow may infer a timestamp column
        return _TEXT_KIND
    if isinstance(value, _JsonInt):
        return _INT_KIND
    if isinstance(value, float):
        return _FLOAT_KIND
    raise _NotPlain  # booleans, nulls, lists and objects


class _JsonInt(int):
    """An int that came from a JSON integer literal (``bool`` is never one)."""


def _json_int(raw: str) -> int:
    number = int(raw)
    if not _INT64[0] <= number <= _INT64[1]:
        raise _NotPlain
    return _JsonInt(number)


def _json_float(raw: str) -> float:
    # pyarrow's JSON reader rounds decimals correctly, as float() does, at any length.
    number = float(raw)
    if not math.isfinite(number):
        raise _NotPlain
    return number


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    row = dict(pairs)
    if len(row) != len(pairs):
        raise _NotPlain
    return row


def _reject(raw: str) -> Any:
    raise _NotPlain  # NaN, Infinity: not JSON, and pyarrow refuses them


_TIMESTAMP = re.compile(r"\s*[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _looks_like_timestamp(value: str) -> bool:
    return _TIMESTAMP.match(value) is not None
