"""Real deployments on 127.0.0.1: a SuperLink and SuperNodes started with the launchers
in server/ and clients/, each process stopped by its own PID when the test ends."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CONNECTION = "fedseed-test"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env(**extra: str) -> dict[str, str]:
    """This environment, with the venv first on PATH, no network calls from Flower and
    no per-run dependency installation."""
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
            "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
            "FLWR_DISABLE_UPDATE_CHECK": "1", "FLWR_TELEMETRY_ENABLED": "0", **extra}


@dataclass
class Processes:
    """Processes a test started; :meth:`stop_all` stops each (and what it spawned) by PID."""

    logs: Path
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Start ``command`` with stdout and stderr to ``logs/NAME.log``."""
        with open(self.logs / f"{name}.log", "wb") as log:
            proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log,
                                    stderr=subprocess.STDOUT)
        self.started.append(proc)
        return proc

    def log(self, name: str) -> str:
        """What process ``name`` has written so far."""
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        """SIGTERM each process and its descendants by PID; SIGKILL what outlives 15 s."""
        for proc in reversed(self.started):
            stop_tree(proc.pid)
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)


def stop_tree(pid: int, grace: float = 15.0) -> None:
    """Stop process ``pid`` and every process under it, each by its own PID."""
    try:
        parent = psutil.Process(pid)
        tree = [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for proc in tree:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(tree, timeout=grace)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(alive, timeout=5)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    """Start processes through this; the test stops all of them when it ends."""
    logs = tmp_path / "logs"
    logs.mkdir()
    procs = Processes(logs)
    try:
        yield procs
    finally:
        procs.stop_all()


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 40.0) -> None:
    """Return once ``port`` accepts connections; fail if ``proc`` dies first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"process exited with {proc.returncode}"
        with socket.socket() as s:
            s.settimeout(1.0)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"nothing listens on port {port} after {timeout:.0f}s")


def flwr(*args: str, env: dict[str, str], timeout: float = 60.0
         ) -> subprocess.CompletedProcess[str]:
    """Run the ``flwr`` CLI from the repository root."""
    return subprocess.run([str(BIN / "flwr"), *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def supernodes(env: dict[str, str]) -> dict[int, str]:
    """Node id -> status, as ``flwr supernode list`` reports them."""
    done = flwr("supernode", "list", CONNECTION, "--format", "json", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    listed = json.loads(done.stdout[done.stdout.index("{"):])
    return {int(n["node-id"]): n["status"] for n in listed["nodes"]}


def register(public_key: Path, name: str, env: dict[str, str]) -> int:
    """Register a SuperNode public key; its node id."""
    before = set(supernodes(env))
    done = flwr("supernode", "register", str(public_key), CONNECTION, "--name", name, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    (node,) = set(supernodes(env)) - before
    return node


def wait_online(nodes: set[int], env: dict[str, str], timeout: float = 40.0) -> None:
    """Return once every node in ``nodes`` is online."""
    deadline = time.monotonic() + timeout
    status: dict[int, str] = {}
    while time.monotonic() < deadline:
        status = supernodes(env)
        if all(status.get(n) == "online" for n in nodes):
            return
        time.sleep(0.5)
    raise AssertionError(f"SuperNodes not online after {timeout:.0f}s: {status}")


@pytest.fixture
def quick_recipe(tmp_path: Path) -> Path:
    """digits-mlp with a small budget and search space, so rounds take seconds."""
    from fedseed.recipe import canonical_dict, load_builtin

    data = canonical_dict(load_builtin("digits-mlp"))
    data["name"] = "digits-quick"
    data["budget"] = {**data["budget"], "max_steps": 20, "eval_every": 10}
    data["search_space"] = {"params": {
        "optimizer.lr": {"kind": "log_uniform", "low": 0.001, "high": 0.05},
        "budget.max_steps": {"kind": "choice", "values": [10, 20]},
    }}
    path = tmp_path / "digits-quick.json"
    path.write_text(json.dumps(data))
    return path
