"""Assembly: a recipe becomes a randomly initialised ``torch.nn.Module``.

Deterministic by construction: initialisation runs under a forked torch RNG seeded
with ``recipe.init.seed``, in float32, so the same recipe gives bit-identical tensors
in any process (and the caller's RNG state is left untouched).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from fedseed._internal.atomic import atomic_path
from fedseed.architectures import build_custom
from fedseed.bases.load import load_base
from fedseed.bases.store import BaseStore
from fedseed.errors import ArchitectureError
from fedseed.recipe.codec import recipe_digest
from fedseed.recipe.model import Recipe
from fedseed.trajectory.replay import apply_trajectory

if TYPE_CHECKING:
    import torch

    from fedseed.bases.store import BaseStore


def assemble(recipe: Recipe, bases: BaseStore | None = None) -> torch.nn.Module:
    """Build the model ``recipe`` describes, with deterministic random weights, then
    the weights of its pretrained base (``init.base``, resolved and verified in
    ``bases``, default ``$FEDSEED_HOME/bases``); a recipe with trajectory
    coefficients is then replayed to its shared model (from the base: w0 = base)."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.init.seed)
        model = _build(recipe)
    model = model.to(torch.float32)
    if recipe.init.base is not None:
        load_base(model, (bases or BaseStore.default()).resolve(recipe.init.base))
    if recipe.trajectory is not None and recipe.trajectory.coefficients is not None:
        apply_trajectory(model, recipe.trajectory)
    return model


def parameter_count(recipe: Recipe) -> int:
    """Number of trainable parameters, counted on the meta device (no memory used)."""
    import torch

    with torch.device("meta"):
        model = _build(recipe)
    return sum(p.numel() for p in model.parameters())


def _build(recipe: Recipe) -> torch.nn.Module:
    arch = recipe.architecture
    if arch.family == "torch":
        from fedseed.assemble.torch_nets import CNN, MLP, NgramBag

        builders = {"mlp": MLP, "cnn": CNN}
        assert recipe.task.num_labels is not None  # the recipe validator guarantees it
        if arch.name == "ngram-bag":
            assert recipe.tokenizer is not None  # the recipe validator guarantees it
            return NgramBag(arch.config, recipe.tokenizer.vocab_size,
                            recipe.task.num_labels)
        return builders[arch.name](arch.config, recipe.task.num_labels)
    if arch.family == "transformers":
        from fedseed.assemble.hf import build_transformers_model

        return build_transformers_model(recipe)
    if arch.family == "custom":  # the device's own registered code, checked first
        return build_custom(recipe)
    raise ArchitectureError(f"unknown architecture family '{arch.family}'")


def state_dict_digest(model: torch.nn.Module) -> str:
    """``sha256:<hex>`` over names, dtypes, shapes and bytes of every tensor."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        h.update(t.numpy().tobytes() if t.numel() else b"")
    return "sha256:" + h.hexdigest()


def save_weights(model: torch.nn.Module, path: str | Path, recipe: Recipe) -> None:
    """Write ``model``'s weights as safetensors, atomically, tagged with the recipe digest.

    Tied tensors (GPT-2's embedding and head) are stored once, as
    ``safetensors.torch.save_model`` does.
    """
    from safetensors.torch import save_model

    with atomic_path(Path(path)) as tmp:
        save_model(model, str(tmp), metadata={"fedseed.recipe": recipe_digest(recipe),
                                              "format": "pt"})
        _sort_header(tmp)


def _sort_header(path: Path) -> None:
    """Rewrite a safetensors header with sorted keys, in place.

    safetensors keeps ``__metadata__`` in a hash map, so its key order (and so the
    file's bytes) varies between processes. Sorting gives the same bytes for the same
    weights; the header keeps its length, so tensor offsets are unchanged.
    """
    import json
    import struct

    with open(path, "r+b") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = handle.read(length)
        canonical = json.dumps(json.loads(header), sort_keys=True, separators=(",", ":"))
        handle.seek(8)
        handle.write(canonical.encode("utf-8").ljust(length, b" "))


def load_weights(model: torch.nn.Module, path: str | Path) -> torch.nn.Module:
    """Load safetensors weights written by :func:`save_weights` into ``model``."""
    from safetensors.torch import load_model

    load_model(model, str(path))
    return model


__all__ = ["assemble", "load_weights", "parameter_count", "save_weights", "state_dict_digest"]
