"""The practitioner's text baseline: TF-IDF character n-grams + logistic regression.

Character 2-4-grams within word boundaries, sublinear term frequency, ``min_df`` 2,
then a multinomial logistic regression (C = 10); the configuration
``simulations/text_small_data.py`` measured as the strongest of three on 3,000
fortunes (0.551 test accuracy in 10 categories). The model trains on exactly the
rows a fedseed recipe trains on (the recipe's train split; the validation rows are
left out, as fedseed uses them only for early stopping) and is scored on the same
test rows. scikit-learn is imported inside functions.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from fedseed.bench.jobs import Outcome
from fedseed.data.examples import Examples, split_examples
from fedseed.errors import DataError
from fedseed.recipe.training import Split

#: The logistic regression's inverse regularisation strength.
C = 10.0


def tfidf_char(min_df: int = 2) -> Any:
    """The char_wb 2-4-gram TF-IDF vectorizer (sublinear tf)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True,
                           min_df=min_df)


def fit_tfidf_logreg(texts: Sequence[str], labels: np.ndarray) -> Any:
    """A fitted TF-IDF + logistic regression pipeline (``predict(texts)``). A single
    class predicts that class; too few rows for ``min_df`` 2 fall back to 1."""
    from sklearn.dummy import DummyClassifier
    from threadpoolctl import threadpool_limits

    if len(texts) == 0:
        raise DataError("TF-IDF baseline: no training rows")
    if len(np.unique(labels)) < 2:
        return DummyClassifier(strategy="most_frequent").fit(np.zeros((len(labels), 1)),
                                                             labels)
    # One BLAS thread: a multi-threaded fit of a few hundred rows on a busy machine
    # spends its time waiting for threads (measured: 55 s against 2 s).
    with threadpool_limits(1):
        try:
            return _pipeline(2).fit(list(texts), labels)
        except ValueError:  # min_df pruned every n-gram of a tiny set
            return _pipeline(1).fit(list(texts), labels)


def _pipeline(min_df: int) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(tfidf_char(min_df), LogisticRegression(C=C, max_iter=2000))


def accuracy(model: Any, examples: Examples) -> float:
    """Share of ``examples`` the fitted ``model`` labels right."""
    assert examples.texts is not None and examples.labels is not None
    from threadpoolctl import threadpool_limits

    if not len(examples):
        return float("nan")
    texts: Any = list(examples.texts)
    if not hasattr(model, "steps"):  # the single-class dummy ignores its input
        texts = np.zeros((len(texts), 1))
    with threadpool_limits(1):
        return float((model.predict(texts) == examples.labels).mean())


def local_tfidf(users: Sequence[Examples], split: Split) -> list[Outcome]:
    """Each user fits on its own train split; scored on its validation and test."""
    outcomes = []
    for user in users:
        started = time.perf_counter()
        parts = split_examples(user, split)
        assert parts.train.labels is not None
        model = fit_tfidf_logreg(parts.train.texts or (), parts.train.labels)
        outcomes.append(Outcome(test=accuracy(model, parts.test),
                                val=accuracy(model, parts.validation), steps=0, curve=(),
                                seconds=time.perf_counter() - started))
    return outcomes


def pooled_tfidf(users: Sequence[Examples], pooled: Sequence[int], split: Split
                 ) -> tuple[list[Outcome], float]:
    """One model fit on the train splits of the users at ``pooled`` put together
    (what sharing the raw rows would give), scored on every user's test split; and
    the fitting seconds."""
    started = time.perf_counter()
    parts = [split_examples(u, split) for u in users]
    texts = [t for i in pooled for t in (parts[i].train.texts or ())]
    labels = np.concatenate([parts[i].train.labels for i in pooled])
    model = fit_tfidf_logreg(texts, labels)
    fit_seconds = time.perf_counter() - started
    outcomes = []
    for p in parts:
        began = time.perf_counter()
        outcomes.append(Outcome(test=accuracy(model, p.test), val=accuracy(model, p.validation),
                                steps=0, curve=(), seconds=time.perf_counter() - began))
    return outcomes, fit_seconds


__all__ = ["accuracy", "fit_tfidf_logreg", "local_tfidf", "pooled_tfidf", "tfidf_char"]
