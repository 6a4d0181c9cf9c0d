"""Processes a deployment test starts, each stopped by its own PID (with everything it
spawned) when the test or the module's shared deployment ends. A plain module, not the
conftest: tests import it by name."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from support import ROOT


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
