"""The TF-IDF char 2-4 + logistic regression baseline: learns a separable set, trains
on the recipe's train split only, copes with a one-class user, pools federated rows."""

from __future__ import annotations

import numpy as np

from fedseed.bench.text_baselines import fit_tfidf_logreg, local_tfidf, pooled_tfidf
from fedseed.data.examples import Examples
from fedseed.recipe.training import Split

SPLIT = Split(validation_fraction=0.2, test_fraction=0.2, seed=0)
WORDS = {0: ["kernel", "compiler", "bytes", "debugger"], 1: ["pasta", "garlic", "butter",
                                                             "oven"]}


def _user(n, labels, seed):
    rng = np.random.default_rng(seed)
    ys = rng.choice(labels, n)
    texts = tuple(" ".join(rng.choice(WORDS[int(y)], 4)) for y in ys)
    return Examples(source=f"user {seed}", texts=texts, labels=ys.astype(np.int64))


def test_separable_text_is_learned_per_user():
    outcomes = local_tfidf([_user(60, [0, 1], s) for s in range(3)], SPLIT)
    assert [o.test for o in outcomes] == [1.0, 1.0, 1.0]
    assert all(o.steps == 0 and o.seconds >= 0 for o in outcomes)


def test_a_user_with_one_category_predicts_it():
    (outcome,) = local_tfidf([_user(30, [1], 0)], SPLIT)
    assert outcome.test == 1.0


def test_pooled_rows_help_a_user_who_never_saw_a_category():
    # User 0 knows only category 0 and is tested on it; user 1 only category 1. Pooled,
    # both are right; users outside the pool are still scored.
    users = [_user(40, [0], 0), _user(40, [1], 1), _user(40, [0, 1], 2)]
    outcomes, seconds = pooled_tfidf(users, [0, 1], SPLIT)
    assert [o.test for o in outcomes] == [1.0, 1.0, 1.0] and seconds >= 0


def test_fit_predicts_texts():
    model = fit_tfidf_logreg(["kernel bytes", "pasta oven"] * 5, np.asarray([0, 1] * 5))
    assert model.predict(["compiler kernel", "garlic pasta"]).tolist() == [0, 1]
