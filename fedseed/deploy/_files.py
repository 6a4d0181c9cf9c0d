"""Writing deployment files: refuse to overwrite unless asked, private keys 0600."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fedseed._internal.atomic import atomic_path
from fedseed.errors import OutputError


def prepare_outputs(out: Path, paths: Sequence[Path], overwrite: bool) -> None:
    """Make ``out`` (mode 0700) if missing; refuse existing ``paths`` unless ``overwrite``.

    Raises
    ------
    OutputError
        ``out`` is not a folder or cannot be made, or a path exists.
    """
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as e:
        raise OutputError(f"{out}: cannot make folder ({e.strerror})") from e
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        raise OutputError(f"{existing[0]}: exists; choose another --out or pass --force")


def write_output(path: Path, data: bytes, *, private: bool = False) -> None:
    """Write ``data`` to ``path`` atomically; mode 0600 if ``private``."""
    with atomic_path(path, private=private) as tmp:
        tmp.write_bytes(data)
