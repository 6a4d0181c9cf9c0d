"""Local training jobs of the personalization benchmark, run in worker processes.

Every method's final step is the same: a device trains (or only evaluates) a model
on its own split. These jobs run that step in a pool of single-threaded worker
processes, one per core, so methods are compared on identical code paths and the
benchmark uses the whole machine. A job is plain data (recipe bytes, examples,
optional assignment and starting weights); its result is plain data too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fedseed.assemble import assemble
from fedseed.data.examples import Examples, split_examples
from fedseed.data.tensors import to_tensors
from fedseed.personalize import personalize_examples
from fedseed.recipe.codec import parse_recipe

_T = TypeVar("_T")
_R = TypeVar("_R")


@dataclass(frozen=True)
class Job:
    """Personalise ``recipe`` on ``examples`` (or only evaluate ``initial_state`` when
    ``train`` is false); ``initial_state`` starts from those weights."""

    recipe: bytes
    examples: Examples
    assignment: Mapping[str, Any] = field(default_factory=dict)
    initial_state: Mapping[str, Any] | None = None
    train: bool = True


@dataclass(frozen=True)
class Outcome:
    """What a job measured on the device's own splits."""

    test: float
    val: float
    steps: int
    curve: tuple[tuple[int, float], ...]  # (step, validation metric)
    seconds: float


def _init_worker() -> None:
    import logging
    import os

    import torch

    torch.set_num_threads(1)
    os.environ["HF_HUB_OFFLINE"] = "1"
    logging.getLogger("datasets").setLevel(logging.ERROR)


def run_job(job: Job) -> Outcome:
    """Run one job in this process."""
    import time

    recipe = parse_recipe(job.recipe, "benchmark recipe")
    started = time.perf_counter()
    if not job.train:
        return _evaluate_only(recipe, job, started)

    done = personalize_examples(recipe, job.examples, assignment=dict(job.assignment) or None,
                                initial_state=job.initial_state)
    ev = done.recipe.evidence
    assert ev is not None
    return Outcome(test=float(ev.final.test_metric if ev.final.test_metric is not None
                              else ev.final.val_metric),
                   val=ev.final.val_metric, steps=ev.steps,
                   curve=tuple((p.step, p.val_metric) for p in ev.curve),
                   seconds=time.perf_counter() - started)


def _evaluate_only(recipe: Any, job: Job, started: float) -> Outcome:
    import time

    from fedseed.train.objectives import evaluate

    model = assemble(recipe)
    if job.initial_state is not None:
        model.load_state_dict(dict(job.initial_state))
    splits = split_examples(job.examples, recipe.split)
    _, val = evaluate(model, to_tensors(splits.validation, recipe), recipe)
    test = val
    if len(splits.test):
        _, test = evaluate(model, to_tensors(splits.test, recipe), recipe)
    return Outcome(test=float(test), val=float(val), steps=0, curve=(),
                   seconds=time.perf_counter() - started)


class Pool:
    """A pool of single-threaded worker processes (spawned: no forked torch state)."""

    def __init__(self, workers: int) -> None:
        import multiprocessing

        self.workers = workers
        self._pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_init_worker) if workers > 1 else None

    def map(self, jobs: Iterable[Job], on_done: Callable[[], None] | None = None
            ) -> list[Outcome]:
        """Run ``jobs``; results in job order."""
        return self.map_with(run_job, jobs, on_done)

    def map_with(self, fn: Callable[[_T], _R], items: Iterable[_T],
                 on_done: Callable[[], None] | None = None) -> list[_R]:
        """``fn`` (a module-level function, so that workers can import it) on each
        item; results in item order."""
        items = list(items)
        if self._pool is None:
            _init_worker()
            out = []
            for item in items:
                out.append(fn(item))
                if on_done:
                    on_done()
            return out
        futures = [self._pool.submit(fn, item) for item in items]
        results = []
        for future in futures:
            results.append(future.result())
            if on_done:
                on_done()
        return results

    def close(self) -> None:
        """Stop the workers."""
        if self._pool is not None:
            self._pool.shutdown()

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
