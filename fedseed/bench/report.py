"""Writing benchmark results: JSON + Markdown (+ the PNG the caller draws), atomically."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

from fedseed._internal.atomic import atomic_path, atomic_write_bytes


def machine() -> dict[str, Any]:
    """What the numbers were measured on (absolute times depend on it)."""
    import os

    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }


def human_bytes(value: float) -> str:
    """A byte count as the result pages print it: ``1.3 MB``, ``6.9 KB``, ``290 B``."""
    if value <= 0:
        return "0"
    for unit, size in (("MB", 1e6), ("KB", 1e3)):
        if value >= size:
            return f"{value / size:,.1f} {unit}"
    return f"{value:,.0f} B"


def write_results(out_dir: Path, stem: str, payload: dict[str, Any], markdown: str) -> list[Path]:
    """Write ``stem.json`` and ``stem.md`` under ``out_dir``; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    atomic_write_bytes(json_path, (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode())
    atomic_write_bytes(md_path, markdown.encode())
    return [json_path, md_path]


def save_figure(fig: Any, path: Path) -> Path:
    """Write a matplotlib figure as PNG, atomically, and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return path
