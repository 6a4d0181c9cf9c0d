"""Pretrained bases, pinned by digest: a recipe's ``init.base`` names one, devices
resolve it from their local store, and the base itself never travels.

See docs/bases.md.
"""

from __future__ import annotations

from fedseed.bases.digest import base_digest, folder_manifest
from fedseed.bases.store import BaseStore, StoredBase

__all__ = ["BaseStore", "StoredBase", "base_digest", "folder_manifest", "pretrained_base"]


def __getattr__(name: str):
    if name == "pretrained_base":  # torch-heavy: imported on first use
        from fedseed.bases.cache import pretrained_base

        return pretrained_base
    raise AttributeError(name)
