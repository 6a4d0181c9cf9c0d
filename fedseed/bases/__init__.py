"""Pretrained bases, pinned by digest: a recipe's ``init.base`` names one, devices
resolve it from their local store, and the base itself never travels.

See docs/bases.md.
"""

from __future__ import annotations

from fedseed.bases.digest import base_digest, folder_manifest
from fedseed.bases.store import BaseStore, StoredBase

__all__ = ["BaseStore", "StoredBase", "base_digest", "folder_manifest", "pretrained_base"]


def __getattr__(name: str):
    # Imported on first use: bases.cache pretrains through fedseed.assemble, which loads
    # bases through this package, so a module-level import here would be a cycle.
    if name == "pretrained_base":
        from fedseed.bases.cache import pretrained_base

        return pretrained_base
    raise AttributeError(name)
