"""Local data: loading, checking, splitting, partitioning and tensorising examples."""

from fedseed.data.builtin import BUILTIN_DATASETS, load_builtin_dataset, load_digits, load_toy_text
from fedseed.data.examples import Examples, Splits, split_examples
from fedseed.data.local import check_examples, load_examples

__all__ = [
    "BUILTIN_DATASETS",
    "Examples",
    "Splits",
    "check_examples",
    "load_builtin_dataset",
    "load_digits",
    "load_toy_text",
    "load_examples",
    "split_examples",
]
