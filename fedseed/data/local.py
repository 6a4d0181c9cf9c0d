"""Loading a device's local data files with Hugging Face ``datasets``.

Accepted: ``.csv``, ``.json``/``.jsonl``, ``.parquet`` files and folders written by
``datasets.Dataset.save_to_disk``; nothing is fetched from a hub. Plain CSV and JSON
Lines files are read with the standard library instead (:mod:`fedseed.data._plain`),
with the columns, types and values ``datasets`` would give, so that personalising
from them does not import ``datasets``, pandas and pyarrow (about 150 MiB resident);
every other file goes through ``datasets``. The columns a recipe needs are checked
here, so a bad file fails before any training with one line that names the file,
the column and, where it helps, the row.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from fedseed.data.builtin import BUILTIN_DATASETS, load_builtin_dataset
from fedseed.data.examples import Examples
from fedseed.errors import DataError
from fedseed.recipe.model import Recipe

logger = logging.getLogger(__name__)

_READERS = {".csv": "from_csv", ".json": "from_json", ".jsonl": "from_json",
            ".parquet": "from_parquet"}
_PLAIN_SUFFIXES = (".csv", ".json", ".jsonl")
_NUMERIC = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
            "float16", "float32", "float64", "bool")


def load_examples(
    ref: str,
    recipe: Recipe,
    *,
    text_column: str = "text",
    label_column: str = "label",
) -> Examples:
    """Load the examples at ``ref`` (a path, or a built-in name such as ``digits``)
    and check them against ``recipe``."""
    if ref in BUILTIN_DATASETS and not Path(ref).exists():
        examples = load_builtin_dataset(ref)
    else:
        examples = _from_dataset(_read(Path(ref)), ref, recipe, text_column, label_column)
    check_examples(examples, recipe, label_column=label_column)
    return examples


def load_users(ref: str, recipe: Recipe, *, partition_by: str, text_column: str = "text",
               label_column: str = "label", min_rows: int = 3) -> dict[str, Examples]:
    """The file at ``ref`` split by the values of column ``partition_by`` (a natural
    partition: one user per value, in sorted order), each checked against ``recipe``.

    A user with fewer than ``min_rows`` rows cannot hold a train, validation and
    test split; that is refused with the user's value and its row count.
    """
    ds = _read(Path(ref))
    columns = list(ds.column_names)
    if partition_by not in columns:
        raise DataError(f"{ref}: no column '{partition_by}' to partition by (columns: "
                        f"{', '.join(columns)}); pass --partition-by with one of them")
    if partition_by in (label_column, text_column):
        raise DataError(f"{ref}: --partition-by '{partition_by}' is also the label or text "
                        "column; partition by a user column")
    owners = [str(v) if v is not None else "" for v in ds[partition_by]]
    examples = _from_dataset(ds, ref, recipe, text_column, label_column, skip=partition_by)
    check_examples(examples, recipe, label_column=label_column)
    rows: dict[str, list[int]] = {}
    for row, owner in enumerate(owners):
        rows.setdefault(owner, []).append(row)
    users = {}
    for owner in sorted(rows):
        if len(rows[owner]) < min_rows:
            raise DataError(f"{ref}: user '{owner}' (column '{partition_by}') has "
                            f"{len(rows[owner])} row(s); every user needs at least "
                            f"{min_rows} (train, validation and test); drop or merge it")
        part = examples.take(np.asarray(rows[owner], dtype=np.int64))
        users[owner] = Examples(source=f"{ref}[{partition_by}={owner}]", texts=part.texts,
                                features=part.features, labels=part.labels)
    return users


def label_names(ref: str, column: str = "label") -> list[str]:
    """The distinct values of ``column`` in the file at ``ref``, sorted (as text):
    a recipe's ``task.labels``."""
    ds = _read(Path(ref))
    if column not in ds.column_names:
        raise DataError(f"{ref}: no label column '{column}' (columns: "
                        f"{', '.join(ds.column_names)})")
    values = ds[column]
    for row, value in enumerate(values):
        if value is None or (isinstance(value, str) and not value.strip()):
            raise DataError(f"{ref}: column '{column}' row {row} is missing")
    names = sorted({str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)
                    for v in values})
    if len(names) < 2:
        raise DataError(f"{ref}: column '{column}' holds {len(names)} distinct value(s); a "
                        "classifier needs at least 2")
    return names


def check_examples(examples: Examples, recipe: Recipe, *, label_column: str = "label") -> None:
    """Raise :class:`DataError` unless ``examples`` fit ``recipe``'s task and input shape."""
    if len(examples) == 0:
        raise DataError(f"{examples.source}: the dataset is empty")
    task = recipe.task
    if task.modality == "text":
        if examples.texts is None:
            hint = ("use a text data set such as toy-text" if examples.source in BUILTIN_DATASETS
                    or "[user" in examples.source else "pass --text-column")
            raise DataError(
                f"{examples.source}: recipe '{recipe.name}' is a text recipe but the data "
                f"has no text; {hint}"
            )
    else:
        if examples.features is None:
            raise DataError(f"{examples.source}: recipe '{recipe.name}' needs numeric features")
        want = _feature_count(recipe)
        got = int(examples.features.shape[1])
        if want is not None and got != want:
            raise DataError(
                f"{examples.source}: {got} feature columns, but recipe '{recipe.name}' "
                f"expects {want} (architecture.config)"
            )
    if task.kind == "classification":
        assert task.num_labels is not None
        labels = examples.labels
        if labels is None:
            raise DataError(f"{examples.source}: no label column '{label_column}'")
        bad = np.flatnonzero((labels < 0) | (labels >= task.num_labels))
        if bad.size:
            row = int(bad[0])
            raise DataError(
                f"{examples.source}: column '{label_column}' has value {int(labels[row])} "
                f"at row {row}, outside 0..{task.num_labels - 1} "
                f"(task.num_labels={task.num_labels}); derive a recipe for your labels "
                f"with `fedseed recipe new --from {recipe.name} --labels-from "
                f"FILE:{label_column} -o my.json`, or pass --set task.num_labels=N"
            )


def _feature_count(recipe: Recipe) -> int | None:
    """Feature columns the model takes (None: a custom factory that does not say)."""
    config = recipe.architecture.config
    if recipe.architecture.family == "custom":
        value = config.get("in_features")  # type: ignore[union-attr]
        return int(value) if isinstance(value, int) else None
    if recipe.architecture.name == "cnn":
        return int(config.in_channels * config.image_size ** 2)  # type: ignore[union-attr]
    return int(config.in_features)  # type: ignore[union-attr]


def _read(path: Path) -> Any:
    if not path.exists():
        raise DataError(f"{path}: data file does not exist")
    if path.is_file() and path.stat().st_size > 0:
        from fedseed.data._plain import read_plain

        plain = read_plain(path)
        if plain is not None:
            return plain
        if path.suffix.lower() in _PLAIN_SUFFIXES:
            logger.debug("%s: not a plain file, read with datasets", path)
    import datasets

    datasets.disable_progress_bars()
    # datasets logs its own copy of a parse error before raising; fedseed reports
    # the error once, as a DataError, so the library's log is quieted meanwhile.
    verbosity = datasets.logging.get_verbosity()
    datasets.logging.get_logger("datasets").setLevel(100)
    try:
        return _read_quietly(path)
    finally:
        datasets.logging.set_verbosity(verbosity)


def _read_quietly(path: Path) -> Any:
    import datasets

    try:
        if path.is_dir():
            loaded = datasets.load_from_disk(str(path), keep_in_memory=True)
            if isinstance(loaded, datasets.DatasetDict):
                # fedseed makes its own deterministic split, so every split is data.
                loaded = datasets.concatenate_datasets(list(loaded.values()))
            return loaded
        if path.stat().st_size == 0:
            raise DataError(f"{path}: the dataset is empty (0 bytes)")
        reader = _READERS.get(path.suffix.lower())
        if reader is None:
            raise DataError(
                f"{path}: unsupported file type '{path.suffix}'; use .csv, .jsonl, .json, "
                ".parquet or a save_to_disk folder"
            )
        return getattr(datasets.Dataset, reader)(str(path), keep_in_memory=True)
    except DataError:
        raise
    except datasets.exceptions.DatasetGenerationError as e:
        raise DataError(f"{path}: cannot read as a dataset: {_one_line(e.__cause__ or e)}") from e
    except ValueError as e:
        if "corresponds to no data" in str(e):  # datasets' word for a file with no rows
            raise DataError(f"{path}: the dataset is empty (no rows)") from e
        raise DataError(f"{path}: cannot read as a dataset: {_one_line(e)}") from e
    except (OSError, TypeError) as e:
        raise DataError(f"{path}: cannot read as a dataset: {_one_line(e)}") from e
    except Exception as e:  # pyarrow raises its own types for malformed files
        if type(e).__module__.startswith(("pyarrow", "datasets")):
            raise DataError(f"{path}: cannot read as a dataset: {_one_line(e)}") from e
        raise


def _from_dataset(ds: Any, ref: str, recipe: Recipe, text_column: str,
                  label_column: str, skip: str | None = None) -> Examples:
    columns = [c for c in ds.column_names if c != skip]
    if ds.num_rows == 0:
        raise DataError(f"{ref}: the dataset is empty")
    dtypes = {name: getattr(ds.features[name], "dtype", "object") for name in columns}
    labels = None
    if recipe.task.kind == "classification":
        if label_column not in columns:
            raise DataError(f"{ref}: no label column '{label_column}' (columns: "
                            f"{', '.join(columns)}); pass --label-column")
        labels = _labels(ds[label_column], dtypes[label_column], ref, label_column, recipe)
    if recipe.task.modality == "text":
        if text_column not in columns:
            raise DataError(f"{ref}: no text column '{text_column}' (columns: "
                            f"{', '.join(columns)}); pass --text-column")
        texts = ds[text_column]
        for row, text in enumerate(texts):
            if not isinstance(text, str):
                raise DataError(f"{ref}: column '{text_column}' row {row} is "
                                f"{type(text).__name__}, not text")
        return Examples(source=ref, texts=tuple(texts), labels=labels)
    feature_columns = [name for name in columns if name != label_column]
    for name in feature_columns:
        if dtypes[name] not in _NUMERIC:
            kind = "text" if "string" in str(dtypes[name]) else str(dtypes[name])
            raise DataError(
                f"{ref}: column '{name}' holds {kind} values, but recipe "
                f"'{recipe.name}' is {recipe.task.modality} (task.modality) and takes "
                "numbers only; use a text recipe or drop the column"
            )
    if not feature_columns:
        raise DataError(f"{ref}: no feature columns besides '{label_column}'")
    matrix = np.column_stack([np.asarray(ds[name], dtype=np.float64) for name in feature_columns])
    if not np.all(np.isfinite(matrix)):
        row, col = np.argwhere(~np.isfinite(matrix))[0]
        raise DataError(f"{ref}: column '{feature_columns[col]}' row {row} is missing or "
                        "not a finite number")
    return Examples(source=ref, features=matrix.astype(np.float32), labels=labels)


def _labels(values: list[Any], dtype: str, ref: str, column: str, recipe: Recipe
            ) -> np.ndarray:
    names = recipe.task.labels
    text = "string" in dtype or any(isinstance(v, str) for v in values[:1])
    if text or names is not None:
        # With task.labels every value is read by its text, numbers included: a CSV's
        # "1" is a number to the reader and a class name to the recipe.
        if names is None:
            raise DataError(
                f"{ref}: column '{column}' holds text labels, but recipe '{recipe.name}' "
                "names no classes (task.labels); derive one with `fedseed recipe new "
                f"--from {recipe.name} --labels-from {ref}:{column} -o my.json`")
        ids = {name: i for i, name in enumerate(names)}
        out = np.empty(len(values), dtype=np.int64)
        for row, value in enumerate(values):
            if value is None:
                raise DataError(f"{ref}: column '{column}' row {row} is missing")
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if str(value) not in ids:
                shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
                raise DataError(f"{ref}: column '{column}' row {row} is '{value}', which "
                                f"is not among recipe '{recipe.name}''s task.labels "
                                f"({shown}); derive the recipe from this file with "
                                "`fedseed recipe new --labels-from`")
            out[row] = ids[str(value)]
        return out
    if not dtype.startswith(("int", "uint")):
        sample = next((v for v in values if v is not None), None)
        if not (isinstance(sample, float) and all(
                isinstance(v, float) and v.is_integer() for v in values)):
            kind = "text" if "string" in dtype else dtype
            raise DataError(
                f"{ref}: column '{column}' holds {kind} values; labels must be integer "
                "class ids 0..num_labels-1"
            )
    for row, value in enumerate(values):
        if value is None:
            raise DataError(f"{ref}: column '{column}' row {row} is missing")
    return np.asarray(values, dtype=np.int64)


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text[:200] + ("..." if len(text) > 200 else "")
