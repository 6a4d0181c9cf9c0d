"""`flwr run .` from the repository root, on Flower's local SuperLink simulation runtime."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from support import HANG_GUARD

ROOT = Path(__file__).resolve().parents[2]


def _stop_superlinks_of(flwr_home: Path) -> int:
    """Stop, by PID, the local SuperLink that `flwr run` started for this FLWR_HOME."""
    stopped = 0
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if "flower-superlink" not in " ".join(proc.info["cmdline"] or []):
                continue
            if proc.environ().get("FLWR_HOME") != str(flwr_home):
                continue
            proc.terminate()
            proc.wait(timeout=20)
            stopped += 1
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.TimeoutExpired):
            continue
    return stopped


@pytest.mark.slow
def test_flwr_run_completes_a_local_simulation(tmp_path, quick_recipe):
    env = {**os.environ, "FLWR_HOME": str(tmp_path / "flwr"),
           "FEDSEED_HOME": str(tmp_path / "fedseed"),
           "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    config = f'num-rounds=2 recipe="{quick_recipe}" fraction=1.0'
    try:
        done = subprocess.run(
            [str(Path(sys.executable).parent / "flwr"), "run", ".", "--run-config", config,
             "--stream"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=HANG_GUARD)
    finally:
        stopped = _stop_superlinks_of(tmp_path / "flwr")

    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "fedseed round 1: sampled 2, accepted 2" in output
    assert "fedseed round 2: sampled 2, accepted 2" in output
    assert '"reported": 2' in output  # both simulated nodes personalised at the end
    assert stopped == 1
    assert list((tmp_path / "fedseed" / "registry" / "blobs").glob("*.json"))
