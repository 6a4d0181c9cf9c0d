"""The configuration of the personalization and text benchmarks: a ``[run]`` table
(:class:`Settings`) and ``[[scenario]]`` tables (:class:`Scenario`), read strictly
(unknown keys refused with their name); see ``simulations/personalization.toml``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from fedseed.errors import FedseedError
from fedseed.meta import AGGREGATORS

#: Data sets a scenario can partition: digits (Dirichlet over classes), fortunes
#: (one char-LM user per category), fortune-categories (labelled quotes, users mix
#: categories; see fedseed.data.fortune_categories).
DATASETS = ("digits", "fortunes", "fortune-categories")


@dataclass(frozen=True)
class Scenario:
    """One row group of the results (see simulations/personalization.toml)."""

    name: str
    dataset: str
    recipe: str
    clients: int = 20
    alpha: float = 0.5
    held_out: float = 0.2
    rounds: int = 4
    fraction: float = 1.0
    aggregators: tuple[str, ...] = ("fedex", "flora", "sha")
    fedavg_rounds: int = 20
    fedavg_local_steps: int = 20
    # FedAvg's local lr, at a constant schedule (0: the recipe's own lr); set it to a
    # first-order scenario's fo_lr to compare the two like for like.
    fedavg_lr: float = 0.0
    oracle: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    max_steps: int = 0
    headline: bool = False
    poisoning: bool = False
    poisoning_naive: bool = True
    warm_start: bool = False
    trajectory: bool = False
    trajectory_rounds: int = 10
    pool_size: int = 1024
    zo_steps: int = 100
    seeds_per_step: int = 16
    zo_lr: float = 0.005
    server_lr: float = 2.0
    trajectory_repeats: int = 1
    # fortune-categories: users mix the ``categories`` largest fortunes categories
    # (Dir(alpha) per user), each holding min_rows.. rows, at most max_train_rows of
    # them for training.
    categories: int = 10
    fortunes_dir: str = ""  # fortunes datasets: where the category files are ("": Debian's)
    min_rows: int = 60
    max_train_rows: int = 300
    # First-order seed projection (Ferret): fo_rounds rounds of fo_local_steps steps
    # of the recipe's optimizer per client, projection_k coefficients each way.
    first_order: bool = False
    fo_rounds: int = 10
    fo_local_steps: int = 20
    projection_k: int = 1024
    projection_lr: float = 1.0
    # The local optimizer's lr for first-order rounds, at a constant schedule (0: the
    # recipe's own lr and schedule), and the coefficients' wire type (float32|float16).
    fo_lr: float = 0.0
    projection_dtype: str = "float32"
    projection_basis: str = "auto"  # auto | count-sketch (every tensor)
    # Text bench only: which methods run (see fedseed.bench.text.METHODS).
    methods: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problems = [
            (self.dataset in DATASETS, f"dataset '{self.dataset}' is not one of "
                                       f"{', '.join(DATASETS)}"),
            (2 <= self.clients <= 10_000, f"clients {self.clients} is not in 2..10000"),
            (0.0 <= self.held_out < 1.0, f"held_out {self.held_out} is not in [0, 1)"),
            (0.0 < self.fraction <= 1.0, f"fraction {self.fraction} is not in (0, 1]"),
            (self.rounds >= 1 and self.fedavg_rounds >= 1 and self.fedavg_local_steps >= 1
             and self.trajectory_repeats >= 1,
             "rounds, fedavg_rounds, fedavg_local_steps and trajectory_repeats must be at "
             "least 1"),
            (self.fo_rounds >= 1 and self.fo_local_steps >= 1 and self.max_train_rows >= 1
             and self.categories >= 2 and self.min_rows >= 3,
             "fo_rounds, fo_local_steps and max_train_rows must be at least 1, categories "
             "at least 2, min_rows at least 3"),
            (self.fedavg_lr >= 0.0, f"fedavg_lr {self.fedavg_lr} must be ≥ 0 (0: the "
                                    "recipe's)"),
            (self.projection_basis in ("auto", "count-sketch"),
             f"projection_basis '{self.projection_basis}' must be auto or count-sketch"),
            (self.fo_lr >= 0.0 and self.projection_dtype in ("float32", "float16"),
             f"fo_lr {self.fo_lr} must be ≥ 0 (0: the recipe's) and projection_dtype "
             f"'{self.projection_dtype}' one of float32, float16"),
            (bool(self.aggregators) and all(a in AGGREGATORS for a in self.aggregators),
             f"aggregators {list(self.aggregators)} must be among {sorted(AGGREGATORS)}"),
        ]
        for ok, message in problems:
            if not ok:
                raise FedseedError(f"scenario '{self.name}': {message}")


@dataclass(frozen=True)
class Settings:
    """The ``[run]`` table."""

    seed: int = 0
    workers: int = 2
    parallel: int = 2


def read_toml(path: Path) -> dict[str, Any]:
    """A benchmark configuration file as a table; one clear line if it cannot be read."""
    import tomllib

    try:
        return tomllib.loads(path.read_text())
    except OSError as e:
        raise FedseedError(f"{path}: cannot read the benchmark configuration ({e.strerror})"
                           ) from e
    except tomllib.TOMLDecodeError as e:
        raise FedseedError(f"{path}: not valid TOML ({e})") from e


def load_config(path: Path, only: Sequence[str] = ()) -> tuple[Settings, list[Scenario]]:
    """Read the benchmark configuration (only the scenarios named in ``only``, when
    given); unknown keys and unknown scenario names are refused with their name."""
    data = read_toml(path)
    settings = build_table(Settings, data.get("run", {}), f"{path} [run]")
    return settings, read_scenarios(data, path, only)


def read_scenarios(data: Mapping[str, Any], path: Path, only: Sequence[str] = ()
                   ) -> list[Scenario]:
    """The ``[[scenario]]`` tables of a benchmark configuration (only those named in
    ``only``, when given); unknown keys and unknown names are refused with their name."""
    scenarios = []
    for i, raw in enumerate(data.get("scenario", [])):
        raw = dict(raw)
        for key in ("aggregators", "methods"):
            if key in raw:
                raw[key] = tuple(raw[key])
        if "oracle" in raw:
            raw["oracle"] = {k: tuple(v) for k, v in raw["oracle"].items()}
        scenarios.append(build_table(Scenario, raw, f"{path} scenario {i + 1}"))
    if not scenarios:
        raise FedseedError(f"{path}: no [[scenario]] tables")
    if only:
        unknown = sorted(set(only) - {s.name for s in scenarios})
        if unknown:
            raise FedseedError(f"--scenario '{unknown[0]}' is not in {path} (there: "
                               f"{', '.join(s.name for s in scenarios)})")
        scenarios = [s for s in scenarios if s.name in only]
    return scenarios


def build_table(cls: type, raw: Mapping[str, Any], where: str) -> Any:
    """``cls(**raw)``; a key ``cls`` has no field for is refused by name."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise FedseedError(f"{where}: unknown key '{unknown[0]}' "
                           f"(known: {', '.join(sorted(known))})")
    try:
        return cls(**raw)
    except TypeError as e:
        raise FedseedError(f"{where}: {e}") from e


__all__ = ["DATASETS", "Scenario", "Settings", "build_table", "load_config", "read_toml"]
