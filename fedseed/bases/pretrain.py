"""Offline pretraining of a base from local text: masked LM for the BERT family,
causal LM for GPT-2, through the recipe's byte tokenizer.

Masked LM follows BERT (Devlin et al., 2019): 15% of the byte positions after the
leading BOS are chosen; of those 80% become the mask id, 10% a random byte and 10%
stay. The byte tokenizer has no ``[MASK]`` id, so the mask is ``EOS`` (id 2), which
classification inputs (``BOS`` + bytes) never contain. Causal LM cuts the stream of
``BOS line EOS`` documents into windows, as the char-LM recipes train. Windows are
drawn at random positions from the corpus (1% at its end is held out for a
validation loss). Training stops at ``max_steps`` or ``max_seconds``, whichever
comes first.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fedseed._internal.atomic import atomic_directory, check_output_folder
from fedseed.assemble import _sort_header
from fedseed.bases.digest import file_sha256
from fedseed.errors import ArchitectureError, DataError
from fedseed.recipe.codec import canonical_json, digest_bytes
from fedseed.recipe.model import Recipe
from fedseed.recipe.task import BOS_ID, BYTE_OFFSET, EOS_ID, PAD_ID

if TYPE_CHECKING:
    import torch

BASE_FILE = "base.safetensors"
INFO_FILE = "base.json"
MASK_ID = EOS_ID
_CURVE_POINTS = 64
_VAL_BATCHES = 8

#: ``progress(step, max_steps, loss)`` after every step.
PretrainProgress = Callable[[int, int, float], None]


@dataclass(frozen=True)
class PretrainSettings:
    """How long and how a base is pretrained (all of it goes into ``base.json``)."""

    max_steps: int = 2000
    max_seconds: float | None = None
    batch_size: int = 32
    lr: float = 1e-3
    mask_prob: float = 0.15
    seed: int = 0


def objective_of(recipe: Recipe) -> str:
    """``mlm`` for bert/distilbert, ``clm`` for gpt2; refuse anything else."""
    arch = recipe.architecture
    if arch.family == "transformers" and arch.name in ("bert", "distilbert"):
        return "mlm"
    if arch.family == "transformers" and arch.name == "gpt2":
        return "clm"
    raise ArchitectureError(f"architecture {arch.family}:{arch.name} has no pretraining "
                            "objective; pretrain a bert, distilbert or gpt2 recipe")


def architecture_digest(recipe: Recipe) -> str:
    """Digest of what a base's shapes depend on: architecture and tokenizer."""
    data = recipe.model_dump(mode="json", include={"architecture", "tokenizer"})
    return digest_bytes(canonical_json(data))


def corpus_entries(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """Name, size and SHA-256 of each corpus file (refusing missing or empty ones)."""
    entries = []
    for path in paths:
        if not Path(path).is_file():
            raise DataError(f"--corpus {path}: no such file")
        size = Path(path).stat().st_size
        if size == 0:
            raise DataError(f"--corpus {path}: file is empty")
        entries.append({"name": Path(path).name, "bytes": size,
                        "sha256": file_sha256(Path(path))})
    return entries


def pretrain(recipe: Recipe, corpus: Sequence[Path], out: Path,
             settings: PretrainSettings = PretrainSettings(), *,
             progress: PretrainProgress | None = None) -> dict[str, Any]:
    """Pretrain ``recipe``'s architecture on ``corpus``; write ``out/base.safetensors``
    and ``out/base.json`` atomically; return the description written to the JSON."""
    import torch

    objective = objective_of(recipe)
    if recipe.tokenizer is None or recipe.tokenizer.kind != "bytes":
        raise ArchitectureError("pretraining reads text through the byte tokenizer; "
                                "the recipe's tokenizer.kind must be 'bytes'")
    check_output_folder(out)
    entries = corpus_entries(corpus)
    length = recipe.tokenizer.max_length
    stream = _stream(corpus, objective, recipe.tokenizer.lowercase)
    cut = len(stream) - max(len(stream) // 100, length + 1)
    if cut <= length + 1:
        raise DataError(f"--corpus: {len(stream)} tokens in all, too few for windows of "
                        f"{length}; give more text")
    train_ids, val_ids = stream[:cut], stream[cut:]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        model = _pretraining_model(recipe).to(torch.float32)
    gen = torch.Generator().manual_seed(settings.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=0.01)
    warmup = max(1, min(100, settings.max_steps // 10))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup))
    losses: list[float] = []
    start = time.monotonic()
    model.train()
    for step in range(1, settings.max_steps + 1):
        batch = _batch(train_ids, objective, length, settings, gen)
        loss = model(**batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if progress is not None:
            progress(step, settings.max_steps, losses[-1])
        if settings.max_seconds is not None and time.monotonic() - start >= settings.max_seconds:
            break
    seconds = time.monotonic() - start
    val_loss = _val_loss(model, val_ids, objective, length, settings)
    tail = losses[-min(50, len(losses)):]
    info: dict[str, Any] = {
        "format": "fedseed.base/v1", "objective": objective,
        "architecture_digest": architecture_digest(recipe), "recipe": recipe.name,
        "corpus": entries, "settings": asdict(settings), "steps": len(losses),
        "seconds": round(seconds, 2), "final_loss": sum(tail) / len(tail),
        "val_loss": val_loss, "curve": _curve(losses),
    }
    from safetensors.torch import save_model

    with atomic_directory(out) as tmp:
        save_model(model, str(tmp / BASE_FILE),
                   metadata={"format": "pt", "fedseed.architecture": info["architecture_digest"]})
        _sort_header(tmp / BASE_FILE)
        info["digest"] = "sha256:" + file_sha256(tmp / BASE_FILE)
        (tmp / INFO_FILE).write_bytes(canonical_json(info) + b"\n")
    return info


def _stream(paths: Sequence[Path], objective: str, lowercase: bool) -> torch.Tensor:
    """The corpus as one id stream (bytes joined by newlines for MLM, ``BOS line EOS``
    documents for causal LM)."""
    import numpy as np
    import torch

    parts = []
    for path in paths:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
        text = text.lower() if lowercase else text
        if objective == "mlm":
            parts.append(np.frombuffer(text.encode("utf-8"), np.uint8).astype(np.int64)
                         + BYTE_OFFSET)
            continue
        for line in text.splitlines():
            if line.strip():
                ids = np.frombuffer(line.encode("utf-8"), np.uint8).astype(np.int64)
                parts.append(np.concatenate([[BOS_ID], ids + BYTE_OFFSET, [EOS_ID]]))
    return torch.from_numpy(np.concatenate(parts) if parts else np.zeros(0, np.int64))


def _pretraining_model(recipe: Recipe) -> torch.nn.Module:
    from fedseed.assemble.hf import _import_model_base

    _import_model_base()
    import transformers

    assert recipe.architecture.family == "transformers"  # objective_of refused the rest
    spec = recipe.architecture.config.model_dump()
    special = {"pad_token_id": PAD_ID, "bos_token_id": BOS_ID, "eos_token_id": EOS_ID}
    classes: dict[str, tuple[Any, Any]] = {
        "bert": (transformers.BertConfig, transformers.BertForMaskedLM),
        "distilbert": (transformers.DistilBertConfig, transformers.DistilBertForMaskedLM),
        "gpt2": (transformers.GPT2Config, transformers.GPT2LMHeadModel),
    }
    config_cls, model_cls = classes[recipe.architecture.name]
    config = config_cls(**spec, **special)
    config._attn_implementation = "eager"
    return model_cls(config)


def _batch(ids: torch.Tensor, objective: str, length: int, settings: PretrainSettings,
           gen: torch.Generator) -> dict[str, torch.Tensor]:
    import torch

    width = length - 1 if objective == "mlm" else length
    starts = torch.randint(0, len(ids) - width, (settings.batch_size,), generator=gen)
    windows = ids[starts[:, None] + torch.arange(width)[None, :]]
    if objective == "clm":
        return {"input_ids": windows, "labels": windows.clone()}
    bos = torch.full((settings.batch_size, 1), BOS_ID, dtype=torch.long)
    inputs = torch.cat([bos, windows], dim=1)
    labels = torch.full_like(inputs, -100)
    chosen = torch.rand(inputs.shape, generator=gen) < settings.mask_prob
    chosen[:, 0] = False
    labels[chosen] = inputs[chosen]
    roll = torch.rand(inputs.shape, generator=gen)
    masked = inputs.clone()
    masked[chosen & (roll < 0.8)] = MASK_ID
    swap = chosen & (roll >= 0.8) & (roll < 0.9)
    random_bytes = torch.randint(BYTE_OFFSET, BYTE_OFFSET + 256, inputs.shape, generator=gen)
    masked[swap] = random_bytes[swap]
    return {"input_ids": masked, "attention_mask": torch.ones_like(masked), "labels": labels}


def _val_loss(model: torch.nn.Module, ids: torch.Tensor, objective: str, length: int,
              settings: PretrainSettings) -> float:
    import torch

    gen = torch.Generator().manual_seed(settings.seed + 1)
    model.eval()
    with torch.no_grad():
        values = [float(model(**_batch(ids, objective, length, settings, gen)).loss)
                  for _ in range(_VAL_BATCHES)]
    model.train()
    return sum(values) / len(values)


def _curve(losses: list[float]) -> list[list[float]]:
    """At most 64 ``[step, mean loss over the steps since the previous point]``."""
    every = max(1, -(-len(losses) // _CURVE_POINTS))
    points = []
    for end in range(every, len(losses) + every, every):
        chunk = losses[end - every:end]
        points.append([min(end, len(losses)), round(sum(chunk) / len(chunk), 5)])
    return points


__all__ = ["PretrainSettings", "architecture_digest", "objective_of", "pretrain"]
