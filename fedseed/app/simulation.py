"""Settings shared by every in-process Flower simulation fedseed runs (``fedseed
simulate``, the benchmarks' fedseed and FedAvg runs), and joining a running Ray
cluster instead of starting one per simulation."""

from __future__ import annotations

import logging
import os
import socket
import sys
from typing import Any

from fedseed.errors import FedseedError

#: Address of a running Ray cluster (``ray start --head``) that fedseed's simulations
#: join instead of starting their own. Flower starts and stops a local Ray for every
#: simulation, about 15 s on a 2-core machine; joining one costs under a second.
RAY_ADDRESS_ENV = "FEDSEED_RAY_ADDRESS"

#: Variables the simulated nodes need from this process. Workers of a running cluster
#: inherit the cluster's environment, not the driver's, so these travel with the job.
_FORWARDED = ("FEDSEED_", "HF_", "TRANSFORMERS_", "TOKENIZERS_", "OMP_", "MKL_",
              "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO")


def backend_config(parallel: int) -> dict[str, Any]:
    """Ray backend settings: ``parallel`` ClientApps at once, no GPU, quiet workers."""
    return {"client_resources": {"num_cpus": max(1, 2 // parallel) if parallel <= 2 else 1,
                                 "num_gpus": 0.0},
            "init_args": {"num_cpus": max(2, parallel), "log_to_driver": False,
                          "logging_level": logging.ERROR}}


def join_ray_cluster() -> bool:
    """Connect to the cluster that ``$FEDSEED_RAY_ADDRESS`` names, if set; Flower then
    uses it (it starts Ray only when none is connected) and, at the end of the
    simulation, disconnects without stopping it. Returns whether a cluster was joined.
    """
    address = os.environ.get(RAY_ADDRESS_ENV)
    if not address:
        return False
    import ray

    if ray.is_initialized():
        return True
    env = {k: v for k, v in os.environ.items() if k.startswith(_FORWARDED)}
    # As Flower does for the Ray it starts: the workers import what this process can.
    env["PYTHONPATH"] = os.pathsep.join([*sys.path, os.environ.get("PYTHONPATH", "")])
    check_ray_address()
    ray.init(address=address, runtime_env={"env_vars": env}, log_to_driver=False,
             logging_level=logging.ERROR)
    return True


def check_ray_address() -> None:
    """``$FEDSEED_RAY_ADDRESS`` as ``host:port`` that nobody listens on is one line
    now, before anything is written; Ray itself would retry the connection for minutes."""
    address = os.environ.get(RAY_ADDRESS_ENV, "")
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", "ray://...": Ray resolves those itself
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except OSError as e:
        raise FedseedError(f"${RAY_ADDRESS_ENV}={address}: no Ray cluster answers there "
                           f"({e.strerror or e}); start one with `ray start --head`, or "
                           "unset the variable") from e
