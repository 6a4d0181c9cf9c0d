"""The digest of a base: one safetensors file, or a local Hugging Face model folder.

- A **file**: ``sha256:<hex>`` of its bytes (what ``sha256sum FILE`` prints).
- A **folder**: ``sha256:<hex>`` of its *manifest*, the text ``sha256sum`` writes for
  every regular file under the folder, one line per file, ``<hex>  <path>\\n``, with
  ``path`` relative to the folder (``/``-separated) and the lines sorted by the path's
  UTF-8 bytes. Paths with a component starting with ``.`` are left out (``.git``,
  ``.cache``); symbolic links are followed (a Hugging Face cache snapshot is made of
  them). The same digest from a shell::

      cd DIR && find -L . -type f ! -path '*/.*' | sed 's|^\\./||' | LC_ALL=C sort \\
        | xargs -d '\\n' sha256sum | sha256sum
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from fedseed.errors import DataError

_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def folder_files(folder: Path) -> list[str]:
    """Relative ``/``-paths of the files a folder digest covers, in manifest order."""
    names = []
    for path in folder.rglob("*"):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        names.append(rel.as_posix())
    return sorted(names, key=lambda name: name.encode("utf-8"))


def folder_manifest(folder: Path) -> bytes:
    """The manifest a folder digest hashes (see the module docstring)."""
    lines = [f"{file_sha256(folder / name)}  {name}\n" for name in folder_files(folder)]
    return "".join(lines).encode("utf-8")


def base_digest(path: Path) -> str:
    """``sha256:<hex>`` of a base file or folder; :class:`DataError` if neither."""
    if path.is_file():
        return "sha256:" + file_sha256(path)
    if path.is_dir():
        if not folder_files(path):
            raise DataError(f"{path}: folder holds no files; a base folder is a Hugging "
                            "Face model folder (config.json + weights)")
        return "sha256:" + hashlib.sha256(folder_manifest(path)).hexdigest()
    raise DataError(f"{path}: no such file or folder; give a .safetensors file or a "
                    "Hugging Face model folder")


__all__ = ["base_digest", "file_sha256", "folder_files", "folder_manifest"]
