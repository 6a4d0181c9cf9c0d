"""Pretrained bases made once and reused: the benchmarks' entry point.

:func:`pretrained_base` keys a base by the digest of what determines it (architecture
digest, corpus file digests, pretraining settings) and keeps the key -> base digest map
in ``<store>/pretrained/<key>.json``. A rerun with the same inputs resolves the stored
base (re-hashed, so a damaged one is refused) instead of training again.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from fedseed._internal.atomic import atomic_write_bytes
from fedseed.bases.pretrain import (
    BASE_FILE,
    PretrainProgress,
    PretrainSettings,
    architecture_digest,
    corpus_entries,
    pretrain,
)
from fedseed.bases.store import BaseStore
from fedseed.recipe.codec import canonical_json, digest_bytes
from fedseed.recipe.model import Recipe

CACHE_DIR = "pretrained"


def pretraining_key(recipe: Recipe, corpus: Sequence[Path], settings: PretrainSettings) -> str:
    """``sha256:<hex>`` of (architecture digest, corpus file digests, settings)."""
    entries = [e["sha256"] for e in corpus_entries(corpus)]
    return digest_bytes(canonical_json({"architecture": architecture_digest(recipe),
                                        "corpus": entries, "settings": asdict(settings)}))


def pretrained_base(recipe: Recipe, corpus: Sequence[Path], seconds: float | None = None, *,
                    settings: PretrainSettings | None = None, store: BaseStore | None = None,
                    progress: PretrainProgress | None = None) -> str:
    """Digest of a base pretrained on ``corpus`` for ``recipe``, made at most once.

    ``seconds`` caps the wall clock (it is part of the key, so a longer budget is a
    new base); ``settings`` gives the rest (default :class:`PretrainSettings`).
    """
    store = store or BaseStore.default()
    base = settings or PretrainSettings(max_steps=1_000_000)
    settings = PretrainSettings(**{**asdict(base), "max_seconds": seconds}) \
        if seconds is not None else base
    key = pretraining_key(recipe, corpus, settings)
    index = store.root / CACHE_DIR / (key.removeprefix("sha256:") + ".json")
    if index.is_file():
        digest = json.loads(index.read_text())["base"]
        store.resolve(digest)
        return str(digest)
    store.root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=store.root, prefix=".pretrain.") as tmp:
        info = pretrain(recipe, corpus, Path(tmp) / "out", settings, progress=progress)
        stored = store.add(Path(tmp) / "out" / BASE_FILE, produced_by=info)
    index.parent.mkdir(exist_ok=True)
    atomic_write_bytes(index, canonical_json({"base": stored.digest, "key": key}) + b"\n")
    return stored.digest


__all__ = ["pretrained_base", "pretraining_key"]
