"""Embedded demo data sets: nothing is downloaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fedseed.data.examples import Examples
from fedseed.errors import FedseedError

#: Names accepted wherever a data path is expected.
BUILTIN_DATASETS: tuple[str, ...] = ("digits", "toy-text")


def load_digits() -> Examples:
    """scikit-learn's 8x8 handwritten digits: 1,797 rows, 64 features in [0, 1], 10 classes.

    The set ships inside scikit-learn, so it works offline. Its file is read directly,
    as ``sklearn.datasets.load_digits`` reads it (tests check the two agree): importing
    ``sklearn.datasets`` pulls in SciPy, ~3 s in every process that loads digits (each
    simulated node's worker among them).
    """
    import gzip
    from importlib.util import find_spec

    spec = find_spec("sklearn")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise FedseedError("the built-in digits set ships with scikit-learn: "
                           "pip install scikit-learn")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
    with gzip.open(path, "rt") as handle:
        table = np.loadtxt(handle, delimiter=",")
    features = (table[:, :-1].astype(np.float32) / 16.0).astype(np.float32)
    return Examples(source="digits", features=features, labels=table[:, -1].astype(np.int64))


_POSITIVE = ("good", "great", "lovely", "fine", "excellent", "happy", "bright", "kind")
_NEGATIVE = ("bad", "awful", "poor", "sad", "terrible", "gloomy", "rude", "broken")
_FILLER = ("the", "a", "day", "was", "service", "food", "movie", "and", "very", "really",
           "quite", "weather", "book", "it", "felt", "so", "this", "today")


def load_toy_text(rows: int = 600, seed: int = 0) -> Examples:
    """A synthetic two-class text set (sentiment-like word lists), made on the fly.

    It exists so that text recipes can be tried and tested with no download; it says
    nothing about real text. Label 1 sentences carry positive words, label 0 negative.
    """
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(rows):
        label = int(rng.integers(0, 2))
        cue = _POSITIVE if label else _NEGATIVE
        words = [str(w) for w in rng.choice(_FILLER, size=int(rng.integers(4, 12)))]
        for _ in range(int(rng.integers(1, 3))):
            words.insert(int(rng.integers(0, len(words) + 1)), str(rng.choice(cue)))
        texts.append(" ".join(words))
        labels.append(label)
    return Examples(source="toy-text", texts=tuple(texts), labels=np.asarray(labels, np.int64))


def load_builtin_dataset(name: str) -> Examples:
    """Load an embedded data set by name (see :data:`BUILTIN_DATASETS`)."""
    return {"digits": load_digits, "toy-text": load_toy_text}[name]()
