"""The one-time setup scripts and the launchers' checks, run as an operator runs them."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from support import ROOT

from fedseed.provenance.keys import load_private_key
from fedseed.provenance.trust import load_trust


def _bash(script: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(["bash", str(ROOT / script), *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PATH": path, **env})


def test_setup_scripts_prepare_a_coordinator_and_a_device_and_keep_what_exists(tmp_path):
    server, device, certs = tmp_path / "server", tmp_path / "device", tmp_path / "certs"

    coordinator = _bash("server/setup_coordinator.sh", "coordinator.example.org",
                        FEDSEED_HOME=str(server), FEDSEED_CERTS=str(certs))
    setup = _bash("clients/setup_device.sh", "device-1", str(server / "keys" / "server.pub"),
                  FEDSEED_HOME=str(device))
    again = _bash("server/setup_coordinator.sh", FEDSEED_HOME=str(server),
                  FEDSEED_CERTS=str(certs))
    setup_again = _bash("clients/setup_device.sh", "device-1",
                        str(server / "keys" / "server.pub"), FEDSEED_HOME=str(device))

    assert coordinator.returncode == 0, coordinator.stdout + coordinator.stderr
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert again.returncode == setup_again.returncode == 0, again.stderr + setup_again.stderr
    assert "keeping the certificates" in again.stdout
    assert "keeping the SuperNode key" in setup_again.stdout
    assert sorted(p.name for p in certs.iterdir()) == ["ca.crt", "ca.key", "server.key",
                                                      "server.pem"]
    _, server_keyid = load_private_key("server", server)
    # The ServerApp and the device both trust the server's recipe key as `server`
    assert load_trust(server).get(server_keyid).roles == ("server",)  # type: ignore[union-attr]
    assert load_trust(device).get(server_keyid).roles == ("server",)  # type: ignore[union-attr]
    load_private_key("device-1", device)
    auth = device / "supernode" / "device-1"
    assert stat.S_IMODE(auth.stat().st_mode) == 0o600
    assert (device / "supernode" / "device-1.pub").read_text().startswith("ecdsa-sha2-nistp384")


def test_setup_scripts_explain_their_arguments():
    device = _bash("clients/setup_device.sh")
    enroll = _bash("server/enroll_device.sh", "only-a-name")

    assert device.returncode == enroll.returncode == 2
    assert "clients/setup_device.sh NAME SERVER_PUB" in device.stderr
    assert "server/enroll_device.sh NAME SUPERNODE_PUB RECIPE_PUB" in enroll.stderr


def test_launchers_refuse_to_start_without_their_files(tmp_path):
    link = _bash("server/launch_superlink.sh", FEDSEED_CERTS=str(tmp_path / "none"))
    node = _bash("clients/launch_supernode.sh", FEDSEED_SUPERLINK="127.0.0.1:9",
                 FEDSEED_ROOT_CERTIFICATES=str(tmp_path / "ca.crt"),
                 FEDSEED_AUTH_KEY=str(tmp_path / "key"), FEDSEED_DATA="digits",
                 FEDSEED_KEY="device-1")
    unset = _bash("clients/launch_supernode.sh", FEDSEED_SUPERLINK="")

    assert link.returncode == 2 and "ca.crt is missing" in link.stderr
    assert "fedseed deploy certs" in link.stderr
    assert node.returncode == 2 and "ca.crt does not exist" in node.stderr
    assert unset.returncode == 2 and "set FEDSEED_SUPERLINK" in unset.stderr
