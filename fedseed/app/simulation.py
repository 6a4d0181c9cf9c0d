"""Settings shared by every in-process Flower simulation fedseed runs (``fedseed
simulate``, the benchmarks' fedseed and FedAvg runs)."""

from __future__ import annotations

import logging
from typing import Any


def backend_config(parallel: int) -> dict[str, Any]:
    """Ray backend settings: ``parallel`` ClientApps at once, no GPU, quiet workers."""
    return {"client_resources": {"num_cpus": max(1, 2 // parallel) if parallel <= 2 else 1,
                                 "num_gpus": 0.0},
            "init_args": {"num_cpus": max(2, parallel), "log_to_driver": False,
                          "logging_level": logging.ERROR}}
