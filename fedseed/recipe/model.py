"""The recipe: a small, typed document that says how to build and train a model.

A recipe is a frozen pydantic model. Its identity is the SHA-256 of its canonical
bytes (see :mod:`fedseed.recipe.codec`); optional sections that are absent are left
out of those bytes, so sections added by later schema versions (``trajectory``)
never change the digest of a recipe that does not use them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from fedseed.recipe._base import Name, ShortText, StrictModel
from fedseed.recipe.architecture import Architecture
from fedseed.recipe.evidence import Evidence, Lineage
from fedseed.recipe.portfolio import Portfolio, WarmStart
from fedseed.recipe.privacy import Privacy
from fedseed.recipe.projection import Projection
from fedseed.recipe.search import SearchSpace
from fedseed.recipe.task import Task, Tokenizer
from fedseed.recipe.training import Budget, Init, Optimizer, Schedule, Split
from fedseed.recipe.trajectory import Trajectory

SCHEMA_VERSION: Literal["fedseed.recipe/v1"] = "fedseed.recipe/v1"

#: Which task kinds and modalities each architecture can serve.
_FITS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "torch:mlp": (frozenset({"classification"}), frozenset({"tabular", "image"})),
    "torch:cnn": (frozenset({"classification"}), frozenset({"image"})),
    "torch:ngram-bag": (frozenset({"classification"}), frozenset({"text"})),
    "transformers:bert": (frozenset({"classification"}), frozenset({"text"})),
    "transformers:distilbert": (frozenset({"classification"}), frozenset({"text"})),
    "transformers:gpt2": (
        frozenset({"classification", "language-modeling"}),
        frozenset({"text"}),
    ),
}

_CUSTOM_FITS = (frozenset({"classification"}), frozenset({"tabular", "image", "text"}))

#: The architecture each tokenizer kind feeds (every other architecture takes bytes).
_NGRAM_ARCHITECTURE = "torch:ngram-bag"


def _check_tokenizer_pairing(architecture: str, kind: str) -> None:
    if architecture.startswith("custom:"):
        return  # a registered factory takes whichever ids its recipe's tokenizer makes
    if (architecture == _NGRAM_ARCHITECTURE) != (kind == "hashed-ngrams"):
        wanted = "hashed-ngrams" if architecture == _NGRAM_ARCHITECTURE else "bytes"
        raise ValueError(f"tokenizer.kind '{kind}' cannot feed architecture {architecture}; "
                         f"use tokenizer.kind '{wanted}'")


class Recipe(StrictModel):
    """How to build and train a model, and (for replies) what happened when it ran.

    See ``docs/recipes.md`` for the format field by field.
    """

    schema_: Literal["fedseed.recipe/v1"] = Field(SCHEMA_VERSION, alias="schema")
    name: Name
    description: ShortText | None = None
    task: Task
    architecture: Architecture
    tokenizer: Tokenizer | None = None
    init: Init = Init()
    optimizer: Optimizer
    schedule: Schedule = Schedule()
    budget: Budget
    split: Split = Split()
    search_space: SearchSpace | None = None
    portfolio: Portfolio | None = None
    warm_start: WarmStart | None = None
    trajectory: Trajectory | None = None
    projection: Projection | None = None
    privacy: Privacy | None = None
    evidence: Evidence | None = None
    lineage: Lineage | None = None

    # The field is ``schema`` and nothing else: no second spelling (``schema_``) of the
    # same recipe, so the schema's "unknown fields are rejected" holds for this one too.

    @model_validator(mode="after")
    def _architecture_fits_task(self) -> Recipe:
        arch = self.architecture
        key = f"{arch.family}:{arch.name}"
        # A custom factory classifies any modality; what it cannot build, it says.
        kinds, modalities = _FITS.get(key) or _CUSTOM_FITS
        if self.task.kind not in kinds:
            raise ValueError(
                f"architecture {key} cannot do task.kind '{self.task.kind}' "
                f"(it does {', '.join(sorted(kinds))})"
            )
        if self.task.modality not in modalities:
            raise ValueError(
                f"architecture {key} does not take task.modality '{self.task.modality}' "
                f"(it takes {', '.join(sorted(modalities))})"
            )
        if self.task.modality == "text":
            if self.tokenizer is None:
                raise ValueError("a text recipe needs a tokenizer section")
            _check_tokenizer_pairing(key, self.tokenizer.kind)
            vocab = getattr(arch.config, "vocab_size", None)
            if vocab is not None and vocab < self.tokenizer.vocab_size:
                raise ValueError(
                    f"architecture.config.vocab_size {vocab} is smaller than the "
                    f"tokenizer's {self.tokenizer.vocab_size} ids"
                )
            positions = getattr(arch.config, "max_position_embeddings", None) or getattr(
                arch.config, "n_positions", None
            )
            if positions is not None and positions < self.tokenizer.max_length:
                raise ValueError(
                    f"tokenizer.max_length {self.tokenizer.max_length} exceeds the "
                    f"architecture's {positions} positions"
                )
        elif self.tokenizer is not None:
            raise ValueError(
                f"task.modality '{self.task.modality}' takes no tokenizer section; "
                "remove it or use modality 'text'"
            )
        space = self.search_space
        if space is not None and "optimizer.momentum" in space.params \
                and self.optimizer.name != "sgd":
            raise ValueError(f"search_space: params.optimizer.momentum: optimizer "
                             f"'{self.optimizer.name}' has no momentum (only sgd does)")
        if self.privacy is not None and self.warm_start is not None:
            raise ValueError("privacy: warm_start pools clients' Adam moments, which no "
                             "privacy mechanism covers; drop warm_start")
        if self.warm_start is not None and self.optimizer.name == "sgd":
            raise ValueError("warm_start: the sgd optimizer has no second moment; drop "
                             "warm_start or use adam/adamw")
        if self.schedule.warmup_steps > self.budget.max_steps:
            raise ValueError(
                f"schedule.warmup_steps {self.schedule.warmup_steps} exceeds "
                f"budget.max_steps {self.budget.max_steps}"
            )
        return self

    @property
    def schema_version(self) -> str:
        """The schema version string, e.g. ``fedseed.recipe/v1``."""
        return self.schema_

    @property
    def architecture_key(self) -> str:
        """``family:name`` of the architecture, e.g. ``transformers:bert``."""
        return f"{self.architecture.family}:{self.architecture.name}"
