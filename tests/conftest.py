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


@pytest.fixture(scope="session", autouse=True)
def _shared_ray_cluster(request: pytest.FixtureRequest):
    """One Ray cluster for the whole session, which every fedseed simulation joins
    ($FEDSEED_RAY_ADDRESS, fedseed.app.simulation): Flower would otherwise start and
    stop Ray for each of the suite's ~15 simulations, ~15 s each on a 2-core machine.
    Started only when a collected test is marked ``slow`` (the federations)."""
    if os.environ.get("FEDSEED_RAY_ADDRESS") or not any(
            item.get_closest_marker("slow") for item in request.session.items):
        yield
        return
    # A short folder: Ray's Unix socket paths must stay under 108 characters.
    temp = Path(tempfile.mkdtemp(prefix="fsray-"))
    # Free ports for what Ray would otherwise bind at fixed ones (client server 10001,
    # dashboard 8265, agent 52365): two suites on one machine must not collide.
    sockets = [socket.socket() for _ in range(4)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    port, client, dashboard, agent = (s.getsockname()[1] for s in sockets)
    for s in sockets:
        s.close()
    log = (temp / "start.log").open("w")
    ray = Path(sys.executable).parent / "ray"
    proc = subprocess.Popen(
        [str(ray), "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
         f"--ray-client-server-port={client}", f"--dashboard-port={dashboard}",
         f"--dashboard-agent-listen-port={agent}", "--node-ip-address=127.0.0.1",
         "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        # Each job forwards its own FEDSEED_HOME; the cluster's is a sink, so that a
        # worker that somehow missed it never writes into the user's ~/.fedseed.
        env={**os.environ, "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0",
             "FEDSEED_HOME": str(temp / "home")})
    deadline = time.monotonic() + HANG_GUARD
    while "Ray runtime started" not in (temp / "start.log").read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("ray start failed: " + (temp / "start.log").read_text()[-2000:])
        time.sleep(0.2)
    os.environ["FEDSEED_RAY_ADDRESS"] = f"127.0.0.1:{port}"
    try:
        yield
    finally:
        del os.environ["FEDSEED_RAY_ADDRESS"]
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout=30)
                break
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


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
