"""transformers architectures, built from configs with random initialisation.

Nothing here reads from a hub: every model is made with ``from_config`` from the
recipe's typed config plus the byte tokenizer's special ids.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import torch

from fedseed._internal.memory import deferred_import
from fedseed.errors import ArchitectureError
from fedseed.recipe.model import Recipe
from fedseed.recipe.task import BOS_ID, EOS_ID, PAD_ID


def build_transformers_model(recipe: Recipe) -> torch.nn.Module:
    """The ``transformers`` model a recipe describes, randomly initialised."""
    _import_model_base()
    import transformers

    arch = recipe.architecture
    assert arch.family != "custom"  # _build hands custom factories to fedseed.architectures
    spec: dict[str, Any] = arch.config.model_dump()
    special = {"pad_token_id": PAD_ID, "bos_token_id": BOS_ID, "eos_token_id": EOS_ID}
    config_classes = {
        "bert": transformers.BertConfig,
        "distilbert": transformers.DistilBertConfig,
        "gpt2": transformers.GPT2Config,
    }
    if arch.name not in config_classes:
        raise ArchitectureError(f"architecture.name '{arch.name}' is not a transformers model")
    auto: Any
    if recipe.task.kind == "classification":
        config = config_classes[arch.name](**spec, **special, num_labels=recipe.task.num_labels)
        auto = transformers.AutoModelForSequenceClassification
    elif arch.name == "gpt2":
        config = config_classes[arch.name](**spec, **special)
        auto = transformers.AutoModelForCausalLM
    else:
        raise ArchitectureError(
            f"architecture {arch.name} cannot do {recipe.task.kind}; use gpt2"
        )
    # Eager attention gives the same numbers on every machine; the tiny models
    # recipes describe gain nothing measurable from fused kernels on a CPU.
    config._attn_implementation = "eager"
    return auto.from_config(config)


def _import_model_base() -> None:
    """Import transformers' model base (``modeling_utils``) without ``scipy.optimize``.

    The base imports every loss transformers has; the object-detection ones import
    ``scipy.optimize`` when scipy is installed (it is: scikit-learn needs it), about
    40 MiB resident that no fedseed architecture uses. It is deferred until called.
    """
    if "transformers.modeling_utils" in sys.modules:
        return

    with deferred_import("scipy.optimize"):
        importlib.import_module("transformers.modeling_utils")
