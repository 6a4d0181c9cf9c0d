"""Shared fixtures. Nothing here talks to a hub: offline mode is forced for the whole
session, and every command runs as a user runs it (a real subprocess)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from support import HANG_GUARD, Run, run_fedseed

from fedseed.recipe import canonical_dict, load_builtin

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


if os.environ.get("PYTEST_XDIST_WORKER"):
    # Several test workers share the cores (make test runs one per core): torch in each
    # process, and in everything it starts, computes on one thread instead of spinning
    # threads that fight the other worker's for the same cores.
    for _threads in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_threads, "1")


class RayCluster:
    """A local Ray cluster (``ray start --head``) on free ports, in a short temporary
    folder, stopped by its process group."""

    def __init__(self) -> None:
        # A short folder: Ray's Unix socket paths must stay under 108 characters.
        self.temp = Path(tempfile.mkdtemp(prefix="fsray-"))
        # Free ports for what Ray would otherwise bind at fixed ones (client server 10001,
        # dashboard 8265, agent 52365): two suites on one machine must not collide.
        sockets = [socket.socket() for _ in range(4)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        port, client, dashboard, agent = (s.getsockname()[1] for s in sockets)
        for s in sockets:
            s.close()
        self.address = f"127.0.0.1:{port}"
        self.log = (self.temp / "start.log").open("w")
        ray = Path(sys.executable).parent / "ray"
        self.proc = subprocess.Popen(
            [str(ray), "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
             f"--ray-client-server-port={client}", f"--dashboard-port={dashboard}",
             f"--dashboard-agent-listen-port={agent}", "--node-ip-address=127.0.0.1",
             "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={self.temp}"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
            # Each job forwards its own FEDSEED_HOME; the cluster's is a sink, so that a
            # worker that somehow missed it never writes into the user's ~/.fedseed.
            env={**os.environ, "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0",
                 "FEDSEED_HOME": str(self.temp / "home")})
        deadline = time.monotonic() + HANG_GUARD
        while "Ray runtime started" not in (self.temp / "start.log").read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("ray start failed: "
                                   + (self.temp / "start.log").read_text()[-2000:])
            time.sleep(0.2)

    def stop(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(timeout=30)
                break
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue
        self.log.close()
        shutil.rmtree(self.temp, ignore_errors=True)


_CLUSTER = pytest.StashKey[RayCluster]()


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Under pytest-xdist (``-n``), the controller starts the one Ray cluster before it
    starts the workers, which inherit its address: one cluster for every worker."""
    config = session.config
    if (getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput")
            and not os.environ.get("FEDSEED_RAY_ADDRESS")):
        cluster = RayCluster()
        config.stash[_CLUSTER] = cluster
        os.environ["FEDSEED_RAY_ADDRESS"] = cluster.address


def pytest_sessionfinish(session: pytest.Session) -> None:
    cluster = session.config.stash.get(_CLUSTER, None)
    if cluster is not None:
        del os.environ["FEDSEED_RAY_ADDRESS"]
        cluster.stop()



@pytest.fixture(scope="session", autouse=True)
def _shared_ray_cluster(request: pytest.FixtureRequest):
    """One Ray cluster for the whole session, which every fedseed simulation joins
    ($FEDSEED_RAY_ADDRESS, fedseed.app.simulation): Flower would otherwise start and
    stop Ray for each of the suite's ~15 simulations, ~15 s each on a 2-core machine.
    Started here, in a run without workers, only when a collected test is marked
    ``slow`` (the federations)."""
    if os.environ.get("FEDSEED_RAY_ADDRESS") or not any(
            item.get_closest_marker("slow") for item in request.session.items):
        yield
        return
    cluster = RayCluster()
    os.environ["FEDSEED_RAY_ADDRESS"] = cluster.address
    try:
        yield
    finally:
        del os.environ["FEDSEED_RAY_ADDRESS"]
        cluster.stop()


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    home = tmp_path_factory.mktemp("fedseed-home")
    monkeypatch.setenv("FEDSEED_HOME", str(home))
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def fedseed(tmp_path: Path):
    """Run the ``fedseed`` CLI in a subprocess, from ``tmp_path``."""

    def run(*args: str, cwd: Path | None = None, timeout: float = HANG_GUARD) -> Run:
        return run_fedseed(*args, cwd=cwd or tmp_path, timeout=timeout)

    return run


@pytest.fixture(scope="session")
def quick_recipe(tmp_path_factory):
    """digits-mlp with a small budget and search space, so federation rounds take seconds."""
    data = canonical_dict(load_builtin("digits-mlp"))
    data["name"] = "digits-quick"
    data["budget"] = {**data["budget"], "max_steps": 20, "eval_every": 10}
    data["search_space"] = {"params": {
        "optimizer.lr": {"kind": "log_uniform", "low": 0.001, "high": 0.05},
        "budget.max_steps": {"kind": "choice", "values": [10, 20]},
    }}
    path = tmp_path_factory.mktemp("recipes") / "digits-quick.json"
    path.write_text(json.dumps(data))
    return path


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules with end-to-end runs (``slow``) first, each module's tests in their own
    order: xdist hands whole modules to workers in this order, so the long ones start
    early and the short ones fill the gaps at the end instead of one long module running
    alone while the other cores idle."""
    slow_modules = {item.nodeid.split("::")[0] for item in items
                    if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.nodeid.split("::")[0] not in slow_modules)
