"""Loading a base's weights into the architecture a recipe builds.

Matching is by tensor name. Every base tensor that the model also has must have the
model's shape (a mismatch is one error naming the tensor); base tensors the model
lacks (a masked-LM head under a classifier) are ignored; model tensors the base lacks
(a fresh classification head) keep the recipe's seeded random initialisation. A base
that shares no tensor with the model is refused. Names saved without the model's
prefix (``embeddings.*`` from a bare ``BertModel``) are matched under the prefix
(``bert.embeddings.*``), as ``transformers``' ``from_pretrained`` does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from fedseed.bases.store import StoredBase
from fedseed.errors import ArchitectureError

if TYPE_CHECKING:
    import torch


def read_base_tensors(base: StoredBase) -> dict[str, torch.Tensor]:
    """All tensors of a stored base, by name, on the CPU."""
    if base.kind == "safetensors":
        from safetensors.torch import load_file

        return load_file(str(base.path))
    return _folder_tensors(base.path)


def load_base(model: torch.nn.Module, base: StoredBase) -> int:
    """Copy ``base``'s tensors into ``model`` in place; return how many were loaded."""
    import torch

    tensors = read_base_tensors(base)
    own = model.state_dict()
    prefix = str(getattr(model, "base_model_prefix", "") or "")
    matched: dict[str, torch.Tensor] = {}
    for name, tensor in tensors.items():
        target = name if name in own else f"{prefix}.{name}" if prefix else name
        if target not in own:
            continue
        if tuple(tensor.shape) != tuple(own[target].shape):
            raise ArchitectureError(
                f"base {base.digest}: tensor '{name}' has shape {tuple(tensor.shape)}, the "
                f"recipe's architecture has {tuple(own[target].shape)} for '{target}'; the "
                "base was made for another architecture config")
        matched[target] = tensor.to(own[target].dtype)
    if not matched:
        raise ArchitectureError(
            f"base {base.digest} shares no tensor name with the recipe's architecture; "
            "it was made for another model")
    with torch.no_grad():
        for name, tensor in matched.items():
            own[name].copy_(tensor)
    return len(matched)


def _folder_tensors(folder: Path) -> dict[str, torch.Tensor]:
    """Weights of a Hugging Face model folder: safetensors (sharded or not) or a bin."""
    import torch
    from safetensors.torch import load_file

    _check_config(folder)
    if (folder / "model.safetensors").is_file():
        return load_file(str(folder / "model.safetensors"))
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        out: dict[str, torch.Tensor] = {}
        for shard in shards:
            out.update(load_file(str(folder / shard)))
        return out
    state = torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
    return dict(state)


def _check_config(folder: Path) -> None:
    """Read the folder's config as ``transformers`` does, never reaching for a hub."""
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise ArchitectureError(f"{folder}: config.json is not a transformers config: {e}") from e


__all__ = ["load_base", "read_base_tensors"]
