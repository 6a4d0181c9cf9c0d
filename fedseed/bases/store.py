"""The local base store: pretrained bases kept by digest under ``$FEDSEED_HOME/bases``.

Layout: one folder per base, named by the digest's hex, holding the base itself
(``base.safetensors`` for a file, ``model/`` for a Hugging Face folder) and
``info.json`` (kind, original name, size, what produced it). Adding copies into a
temporary folder, checks the copy's digest against the source's, then renames it into
place, so a reader sees a complete base or none. Resolving re-hashes the stored bytes
every time: a base whose bytes no longer match its digest is refused.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedseed._internal.atomic import atomic_directory
from fedseed.bases.digest import base_digest
from fedseed.errors import BaseNotFound, DataError, VerificationError
from fedseed.home import fedseed_home

BASES_DIR = "bases"
FILE_NAME = "base.safetensors"
FOLDER_NAME = "model"
INFO_NAME = "info.json"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


@dataclass(frozen=True)
class StoredBase:
    """One base in the store: its digest, where its bytes are, and its info."""

    digest: str
    path: Path
    info: Mapping[str, Any]

    @property
    def kind(self) -> str:
        """``safetensors`` (one file) or ``hf-folder``."""
        return str(self.info.get("kind", "?"))


class BaseStore:
    """Bases by digest in ``root`` (``$FEDSEED_HOME/bases`` for :meth:`default`)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @classmethod
    def default(cls) -> BaseStore:
        """The store of this device, under ``$FEDSEED_HOME``."""
        return cls(fedseed_home() / BASES_DIR)

    def add(self, source: Path, *, produced_by: Mapping[str, Any] | None = None) -> StoredBase:
        """Copy ``source`` (safetensors file or HF folder) in, verified; idempotent."""
        source = Path(source)
        kind = _check_source(source)
        digest = base_digest(source)
        existing = self._entry(digest)
        if existing.is_dir():
            return self.resolve(digest)
        self.root.mkdir(parents=True, exist_ok=True)
        with atomic_directory(existing) as tmp:
            target = tmp / (FILE_NAME if kind == "safetensors" else FOLDER_NAME)
            if kind == "safetensors":
                shutil.copyfile(source, target)
            else:
                shutil.copytree(source, target, symlinks=False,
                                ignore=shutil.ignore_patterns(".*"))
            copied = base_digest(target)
            if copied != digest:
                raise VerificationError(
                    f"{source}: changed while being copied ({digest} then {copied}); "
                    "add it again once nothing writes to it", reason="digest")
            info = {"digest": digest, "kind": kind, "name": source.name,
                    "bytes": _size(target), "produced_by": dict(produced_by or {})}
            (tmp / INFO_NAME).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        return self.resolve(digest)

    def resolve(self, digest: str) -> StoredBase:
        """The stored base ``digest``, re-hashed; refuse a missing or altered one."""
        entry = self._entry(digest)
        info = _read_info(entry / INFO_NAME)
        path = entry / FILE_NAME if (entry / FILE_NAME).exists() else entry / FOLDER_NAME
        if info is None or not path.exists():
            raise BaseNotFound(
                f"base {digest} is not in the base store {self.root}; copy it to this "
                "device and run `fedseed base add PATH`")
        actual = base_digest(path)
        if actual != digest:
            raise VerificationError(
                f"base {digest}: stored bytes in {path} hash to {actual}; the copy is "
                f"damaged or was altered: delete {entry} and `fedseed base add` the "
                "original again", reason="digest")
        return StoredBase(digest=digest, path=path, info=info)

    def list(self) -> list[StoredBase]:
        """Every base in the store, by digest, without re-hashing (see :meth:`resolve`)."""
        if not self.root.is_dir():
            return []
        found = []
        for entry in sorted(self.root.iterdir()):
            info = _read_info(entry / INFO_NAME)
            if entry.name.startswith(".") or info is None:
                continue
            path = entry / FILE_NAME if (entry / FILE_NAME).exists() else entry / FOLDER_NAME
            found.append(StoredBase(digest="sha256:" + entry.name, path=path, info=info))
        return found

    def _entry(self, digest: str) -> Path:
        hexpart = digest.removeprefix("sha256:")
        if len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
            raise DataError(f"'{digest}' is not a base digest; expected sha256:<64 hex digits>")
        return self.root / hexpart


def _check_source(source: Path) -> str:
    if source.is_file():
        if source.suffix != ".safetensors":
            raise DataError(f"{source}: a base file must be .safetensors (or give a Hugging "
                            "Face model folder)")
        return "safetensors"
    if source.is_dir():
        if not (source / "config.json").is_file():
            raise DataError(f"{source}: not a Hugging Face model folder (no config.json)")
        if not any((source / name).is_file() for name in WEIGHT_FILES):
            raise DataError(f"{source}: no weights file (one of {', '.join(WEIGHT_FILES)})")
        return "hf-folder"
    raise DataError(f"{source}: no such file or folder")


def _read_info(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


__all__ = ["BaseStore", "StoredBase"]
