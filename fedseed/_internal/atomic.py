"""Atomic outputs: a reader sees either nothing or the complete file or folder."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from fedseed.errors import OutputError


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: Path, *, private: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    On any exception the temporary file is removed and ``path`` is untouched. The
    file gets the usual permissions (``0666 & ~umask``), or ``0600`` if ``private``.
    """
    parent = path.parent
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; give a file path")
    if not parent.is_dir():
        raise OutputError(f"{path}: folder {parent} does not exist")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600 if private else 0o666 & ~_umask())
        os.replace(tmp, path)
        _fsync_dir(parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def check_output_folder(path: Path, *, overwrite: bool = False) -> None:
    """Refuse an output folder :func:`atomic_directory` would refuse, before any work:
    a file, a non-empty folder without ``overwrite``, or a missing parent."""
    if path.exists():
        if not path.is_dir():
            raise OutputError(f"{path}: exists and is not a folder")
        if any(path.iterdir()) and not overwrite:
            raise OutputError(f"{path}: folder is not empty; choose another --out or pass --force")
    if not path.parent.is_dir():
        raise OutputError(f"{path}: parent folder {path.parent} does not exist")


@contextlib.contextmanager
def atomic_directory(path: Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder next to ``path``; rename it onto ``path`` on success.

    The folder is private to its owner (mode 0700, as ``mkdtemp`` makes it): what
    fedseed writes into one, personalised weights above all, derives from private
    data. ``path`` must not exist, or be an empty folder, unless ``overwrite`` is set. On
    any exception the temporary folder is removed and ``path`` is left as it was.
    """
    check_output_folder(path, overwrite=overwrite)
    parent = path.parent
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent))
    try:
        yield tmp
        _fsync_dir(tmp)
        if path.exists():
            # Move the old folder aside first so that a crash leaves either the old
            # or the new folder in place, never a mix.
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=parent))
            os.replace(path, old / "x")
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
        _fsync_dir(parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
