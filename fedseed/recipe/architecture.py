"""Architectures a recipe can name, each with a closed, bounded config.

Three families: ``torch`` (small built-in nets: ``mlp``, ``cnn``, ``ngram-bag``),
``transformers`` (``bert``, ``distilbert``, ``gpt2``, built with ``from_config`` and
random initialisation, never from a hub), and ``custom``: a torch model factory the
device registered itself (:mod:`fedseed.architectures`), pinned by name, entry point
and a digest of its source. Built-in configs are typed here rather than passed
through as free dicts so that a misspelt key or an absurd size is rejected when the
recipe is read, not minutes later on a device.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from fedseed.recipe._base import DropoutRate, StrictModel

Width = Annotated[int, Field(ge=1, le=65_536)]
Layers = Annotated[int, Field(ge=1, le=96)]
Heads = Annotated[int, Field(ge=1, le=128)]
Vocab = Annotated[int, Field(ge=2, le=1_000_000)]
Positions = Annotated[int, Field(ge=8, le=65_536)]
Eps = Annotated[float, Field(gt=0.0, le=1e-2)]


class MLPConfig(StrictModel):
    """A multilayer perceptron over flat feature vectors (or flattened images)."""

    in_features: Annotated[int, Field(ge=1, le=1_000_000)]
    hidden: Annotated[list[Width], Field(max_length=16)] = [128]
    activation: Literal["relu", "gelu", "tanh"] = "relu"
    dropout: DropoutRate = 0.0


class CNNConfig(StrictModel):
    """A small convolutional net: conv blocks (conv, ReLU, 2x2 max-pool), then a head."""

    in_channels: Annotated[int, Field(ge=1, le=16)] = 1
    image_size: Annotated[int, Field(ge=4, le=512)]
    channels: Annotated[list[Annotated[int, Field(ge=1, le=1024)]],
                        Field(min_length=1, max_length=8)] = [16, 32]
    kernel_size: Literal[1, 3, 5, 7] = 3
    hidden: Width = 64
    dropout: DropoutRate = 0.0

    @model_validator(mode="after")
    def _fits(self) -> CNNConfig:
        if self.image_size // (2 ** len(self.channels)) < 1:
            raise ValueError(
                f"image_size {self.image_size} is too small for {len(self.channels)} "
                "pooling stages; use fewer channels entries"
            )
        return self


class NgramBagConfig(StrictModel):
    """A fastText-style bag of hashed n-grams: ``EmbeddingBag(mean) -> dropout -> Linear``.

    The embedding has one row per id of the recipe's ``hashed-ngrams`` tokenizer
    (``buckets + 1``; row 0 is padding and stays zero), ``dim`` columns each.
    """

    dim: Annotated[int, Field(ge=2, le=1024)] = 32
    dropout: DropoutRate = 0.0


class BertConfigSpec(StrictModel):
    """The subset of ``transformers.BertConfig`` a recipe may set."""

    vocab_size: Vocab
    hidden_size: Width
    num_hidden_layers: Layers
    num_attention_heads: Heads
    intermediate_size: Width
    max_position_embeddings: Positions = 512
    type_vocab_size: Annotated[int, Field(ge=1, le=16)] = 2
    hidden_act: Literal["gelu", "relu", "gelu_new", "silu"] = "gelu"
    hidden_dropout_prob: DropoutRate = 0.1
    attention_probs_dropout_prob: DropoutRate = 0.1
    layer_norm_eps: Eps = 1e-12

    @model_validator(mode="after")
    def _heads(self) -> BertConfigSpec:
        _check_heads(self.hidden_size, self.num_attention_heads, "hidden_size",
                     "num_attention_heads")
        return self


class DistilBertConfigSpec(StrictModel):
    """The subset of ``transformers.DistilBertConfig`` a recipe may set."""

    vocab_size: Vocab
    dim: Width
    n_layers: Layers
    n_heads: Heads
    hidden_dim: Width
    max_position_embeddings: Positions = 512
    activation: Literal["gelu", "relu"] = "gelu"
    dropout: DropoutRate = 0.1
    attention_dropout: DropoutRate = 0.1

    @model_validator(mode="after")
    def _heads(self) -> DistilBertConfigSpec:
        _check_heads(self.dim, self.n_heads, "dim", "n_heads")
        return self


class GPT2ConfigSpec(StrictModel):
    """The subset of ``transformers.GPT2Config`` a recipe may set."""

    vocab_size: Vocab
    n_positions: Positions
    n_embd: Width
    n_layer: Layers
    n_head: Heads
    n_inner: Width | None = None
    activation_function: Literal["gelu_new", "gelu", "relu", "silu"] = "gelu_new"
    resid_pdrop: DropoutRate = 0.1
    embd_pdrop: DropoutRate = 0.1
    attn_pdrop: DropoutRate = 0.1
    layer_norm_epsilon: Eps = 1e-5

    @model_validator(mode="after")
    def _heads(self) -> GPT2ConfigSpec:
        _check_heads(self.n_embd, self.n_head, "n_embd", "n_head")
        return self


def _check_heads(width: int, heads: int, width_name: str, heads_name: str) -> None:
    if width % heads:
        raise ValueError(f"{width_name} {width} is not divisible by {heads_name} {heads}")


class TorchMLP(StrictModel):
    """Built-in MLP (``family: torch, name: mlp``)."""

    family: Literal["torch"] = "torch"
    name: Literal["mlp"] = "mlp"
    config: MLPConfig


class TorchCNN(StrictModel):
    """Built-in CNN (``family: torch, name: cnn``)."""

    family: Literal["torch"] = "torch"
    name: Literal["cnn"] = "cnn"
    config: CNNConfig


class TorchNgramBag(StrictModel):
    """Built-in hashed n-gram classifier (``family: torch, name: ngram-bag``)."""

    family: Literal["torch"] = "torch"
    name: Literal["ngram-bag"] = "ngram-bag"
    config: NgramBagConfig = NgramBagConfig()


class Bert(StrictModel):
    """BERT encoder from ``transformers`` (``family: transformers, name: bert``)."""

    family: Literal["transformers"] = "transformers"
    name: Literal["bert"] = "bert"
    config: BertConfigSpec


class DistilBert(StrictModel):
    """DistilBERT encoder from ``transformers``."""

    family: Literal["transformers"] = "transformers"
    name: Literal["distilbert"] = "distilbert"
    config: DistilBertConfigSpec


class GPT2(StrictModel):
    """GPT-2 decoder from ``transformers``."""

    family: Literal["transformers"] = "transformers"
    name: Literal["gpt2"] = "gpt2"
    config: GPT2ConfigSpec


ConfigValue = int | float | str | bool | None | list[int | float | str]


class CustomArchitecture(StrictModel):
    """A torch model factory registered on the device (``family: custom``).

    ``name`` is what the device registered it as (entry point group
    ``fedseed.architectures``, or :func:`fedseed.architectures.register`); ``entry``
    (``module:function``) and ``source`` (SHA-256 of the source of the module that
    defines it) pin the code, so a device whose code differs refuses the recipe.
    ``entry`` is compared, never imported: only registered code runs. ``config`` is
    passed to the factory as it stands (``recipe.architecture.config``).
    """

    family: Literal["custom"] = "custom"
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
    entry: Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$",
                                max_length=300)]
    source: Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")]
    config: Annotated[dict[str, ConfigValue], Field(max_length=64)] = {}


#: Every architecture a recipe may name, keyed by ``family:name``.
ARCHITECTURES: dict[str, type[StrictModel]] = {
    "torch:mlp": TorchMLP,
    "torch:cnn": TorchCNN,
    "torch:ngram-bag": TorchNgramBag,
    "transformers:bert": Bert,
    "transformers:distilbert": DistilBert,
    "transformers:gpt2": GPT2,
}


def _architecture_tag(value: Any) -> str | None:
    get = value.get if isinstance(value, dict) else lambda k: getattr(value, k, None)
    if get("family") == "custom":
        return "custom"
    key = f"{get('family')}:{get('name')}"
    return key if key in ARCHITECTURES else None


Architecture = Annotated[
    Annotated[TorchMLP, Tag("torch:mlp")]
    | Annotated[TorchCNN, Tag("torch:cnn")]
    | Annotated[TorchNgramBag, Tag("torch:ngram-bag")]
    | Annotated[Bert, Tag("transformers:bert")]
    | Annotated[DistilBert, Tag("transformers:distilbert")]
    | Annotated[GPT2, Tag("transformers:gpt2")]
    | Annotated[CustomArchitecture, Tag("custom")],
    Discriminator(
        _architecture_tag,
        custom_error_type="unknown_architecture",
        custom_error_message="unknown architecture; supported family:name pairs are "
        + ", ".join(ARCHITECTURES) + ", or family custom (a registered factory)",
    ),
]
"""Tagged union of the supported architectures, discriminated by ``family:name``."""
