"""What a recipe learns (the task) and how text becomes token ids (the tokenizer)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from fedseed.recipe._base import StrictModel

TaskKind = Literal["classification", "language-modeling"]
Modality = Literal["tabular", "image", "text"]
Metric = Literal["accuracy", "macro_f1", "perplexity"]

#: Metrics where a smaller value is better; every other metric is maximised.
LOWER_IS_BETTER: frozenset[str] = frozenset({"perplexity"})

#: Special ids of the byte-level tokenizer; byte ``b`` is id ``b + BYTE_OFFSET``.
PAD_ID, BOS_ID, EOS_ID = 0, 1, 2
BYTE_OFFSET = 3
BYTE_VOCAB_SIZE = 256 + BYTE_OFFSET


class Task(StrictModel):
    """The learning problem a recipe solves.

    ``num_labels`` is required for classification and must be absent for language
    modelling (the vocabulary is the tokenizer's). ``metric`` is what validation,
    early stopping and evidence report.
    """

    kind: TaskKind
    modality: Modality
    num_labels: Annotated[int, Field(ge=2, le=100_000)] | None = None
    metric: Metric

    @model_validator(mode="after")
    def _check(self) -> Task:
        if self.kind == "classification":
            if self.num_labels is None:
                raise ValueError("task.num_labels is required for classification")
            if self.metric == "perplexity":
                raise ValueError("task.metric 'perplexity' is for language-modeling; "
                                 "use 'accuracy' or 'macro_f1'")
        else:
            if self.num_labels is not None:
                raise ValueError("task.num_labels must be omitted for language-modeling")
            if self.metric != "perplexity":
                raise ValueError("task.metric must be 'perplexity' for language-modeling")
            if self.modality != "text":
                raise ValueError("language-modeling needs task.modality 'text'")
        return self

    @property
    def higher_is_better(self) -> bool:
        """Whether a larger value of :attr:`metric` is better."""
        return self.metric not in LOWER_IS_BETTER


class ByteTokenizer(StrictModel):
    """Byte-level tokenizer: UTF-8 bytes shifted past three special ids.

    Nothing has to travel with the recipe: ids 0, 1 and 2 are padding,
    beginning-of-sequence (also the classification token) and end-of-sequence, and
    byte ``b`` is id ``b + 3``, so the vocabulary is always 259 ids.
    """

    kind: Literal["bytes"] = "bytes"
    max_length: Annotated[int, Field(ge=8, le=8192)] = 128
    lowercase: bool = False

    @property
    def vocab_size(self) -> int:
        """Number of token ids the tokenizer can emit."""
        return BYTE_VOCAB_SIZE


Tokenizer = ByteTokenizer
