"""What a recipe learns (the task) and how text becomes token ids (the tokenizer)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, model_validator

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
    modelling (the vocabulary is the tokenizer's). ``labels`` optionally names the
    classes: data may then hold these strings as labels, and class id ``i`` is
    ``labels[i]`` (so the order is part of the recipe). ``metric`` is what
    validation, early stopping and evidence report.
    """

    kind: TaskKind
    modality: Modality
    num_labels: Annotated[int, Field(ge=2, le=100_000)] | None = None
    # Absent, not null, when unset: recipes without names keep their bytes and digest.
    labels: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        default=None, exclude_if=lambda value: value is None)
    metric: Metric

    @model_validator(mode="after")
    def _check(self) -> Task:
        if self.kind == "classification":
            if self.num_labels is None:
                raise ValueError("task.num_labels is required for classification")
            if self.metric == "perplexity":
                raise ValueError("task.metric 'perplexity' is for language-modeling; "
                                 "use 'accuracy' or 'macro_f1'")
            if self.labels is not None:
                if len(self.labels) != self.num_labels:
                    raise ValueError(f"task.labels names {len(self.labels)} classes but "
                                     f"task.num_labels is {self.num_labels}; make them agree")
                if len(set(self.labels)) != len(self.labels):
                    twice = next(x for x in self.labels if self.labels.count(x) > 1)
                    raise ValueError(f"task.labels names '{twice}' twice; class names "
                                     "must be distinct")
        else:
            if self.num_labels is not None or self.labels is not None:
                raise ValueError("task.num_labels and task.labels must be omitted for "
                                 "language-modeling")
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


#: Bounds of the hashed n-gram tokenizer: buckets (ids ``1..buckets``; 0 is padding).
MIN_BUCKETS, MAX_BUCKETS = 16, 1 << 24
NgramRange = tuple[Annotated[int, Field(ge=1, le=8)], Annotated[int, Field(ge=1, le=8)]]


class HashedNgramTokenizer(StrictModel):
    """Hashed word and character n-grams, in the style of fastText (Joulin et al., 2017).

    A text becomes a bag of ids: each word n-gram (orders ``word_ngrams``) and each
    character n-gram of a ``<word>`` (lengths ``char_ngrams``) is hashed with BLAKE2b
    into one of ``buckets`` ids. The hashing is defined in
    :mod:`fedseed.data.ngrams` and ``docs/recipes.md``: deterministic in every process
    and on every platform, and nothing has to be downloaded or travel. Id 0 is
    padding; at most ``max_tokens`` ids are kept per text.
    """

    kind: Literal["hashed-ngrams"] = "hashed-ngrams"
    buckets: Annotated[int, Field(ge=MIN_BUCKETS, le=MAX_BUCKETS)] = 1 << 16
    word_ngrams: NgramRange | None = (1, 2)
    char_ngrams: NgramRange | None = (2, 4)
    lowercase: bool = True
    max_tokens: Annotated[int, Field(ge=8, le=65_536)] = 1024

    @model_validator(mode="after")
    def _check(self) -> HashedNgramTokenizer:
        for name in ("word_ngrams", "char_ngrams"):
            span = getattr(self, name)
            if span is not None and span[0] > span[1]:
                raise ValueError(f"tokenizer.{name} [{span[0]}, {span[1]}] is inverted; "
                                 "write [low, high] with low <= high")
        if self.word_ngrams is None and self.char_ngrams is None:
            raise ValueError("tokenizer: word_ngrams and char_ngrams are both null; "
                             "set at least one of them")
        return self

    @property
    def vocab_size(self) -> int:
        """Number of token ids the tokenizer can emit (the buckets plus padding)."""
        return self.buckets + 1

    @property
    def max_length(self) -> int:
        """Most ids per text (``max_tokens``), the byte tokenizer's name for it."""
        return self.max_tokens


#: Every tokenizer kind a recipe may name.
TOKENIZERS: dict[str, type[StrictModel]] = {
    "bytes": ByteTokenizer,
    "hashed-ngrams": HashedNgramTokenizer,
}


def _tokenizer_tag(value: Any) -> str | None:
    kind = value.get("kind", "bytes") if isinstance(value, dict) else getattr(value, "kind", None)
    return kind if kind in TOKENIZERS else None


Tokenizer = Annotated[
    Annotated[ByteTokenizer, Tag("bytes")]
    | Annotated[HashedNgramTokenizer, Tag("hashed-ngrams")],
    Discriminator(
        _tokenizer_tag,
        custom_error_type="unknown_tokenizer",
        custom_error_message="unknown tokenizer kind; supported kinds are "
        + ", ".join(TOKENIZERS),
    ),
]
"""Tagged union of the tokenizers, discriminated by ``kind`` (``bytes`` if absent)."""
