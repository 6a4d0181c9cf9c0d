"""Where fedseed keeps its state: ``$FEDSEED_HOME``, default ``~/.fedseed``."""

from __future__ import annotations

import os
from pathlib import Path


def fedseed_home() -> Path:
    """The fedseed state folder (keys, trust store, embedded registry)."""
    configured = os.environ.get("FEDSEED_HOME")
    return Path(configured).expanduser() if configured else Path.home() / ".fedseed"
