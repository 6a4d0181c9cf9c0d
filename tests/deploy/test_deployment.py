"""A real deployment on 127.0.0.1: `flower-superlink` over TLS with SuperNode
authentication (server/launch_superlink.sh), `flower-supernode`s with their own keys,
data and FEDSEED_HOME (clients/launch_supernode.sh), and `flwr run . CONNECTION`."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from support import HANG_GUARD, ROOT

from fedseed.deploy import add_connection, generate_supernode_key, generate_tls, make_connection
from fedseed.provenance.keys import generate_key
from fedseed.provenance.trust import load_trust, save_trust

pytestmark = pytest.mark.slow

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


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = HANG_GUARD) -> None:
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


def flwr(*args: str, env: dict[str, str], timeout: float = HANG_GUARD
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
    done = flwr("supernode", "register", str(public_key), CONNECTION, "--name", name,
                "--format", "json", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return int(json.loads(done.stdout[done.stdout.index("{"):])["node-id"])


def wait_online(nodes: set[int], env: dict[str, str], timeout: float = HANG_GUARD) -> None:
    """Return once every node in ``nodes`` is online."""
    deadline = time.monotonic() + timeout
    status: dict[int, str] = {}
    while time.monotonic() < deadline:
        status = supernodes(env)
        if all(status.get(n) == "online" for n in nodes):
            return
        time.sleep(0.5)
    raise AssertionError(f"SuperNodes not online after {timeout:.0f}s: {status}")


def _trust(home: Path, public_key: Path, role: str, name: str) -> None:
    store, _ = load_trust(home).add(public_key.read_bytes(), role, name)
    save_trust(store, home)


def _digits_csv(path: Path, rows: range) -> Path:
    """Rows of scikit-learn's digits as a device's CSV file: px0..px63, label."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*(f"px{i}" for i in range(64)), "label"])
        for r in rows:
            writer.writerow([*(f"{v / 16:.4f}" for v in digits.data[r]), int(digits.target[r])])
    return path


def _coordinator(tmp_path: Path, processes: Any) -> tuple[int, dict[str, str], Path]:
    """Certificates, the server's FEDSEED_HOME (its key trusted as `server`), a running
    SuperLink and a `flwr` connection to it; the port, the CLI's env and the server home."""
    certs = generate_tls(tmp_path / "certs")
    server_home = tmp_path / "server-home"
    server = generate_key("server", server_home)
    _trust(server_home, server.public_path, "server", "server")
    port = free_port()
    link = processes.start("superlink", ["bash", str(ROOT / "server" / "launch_superlink.sh")],
                           base_env(FEDSEED_CERTS=str(certs.ca_cert.parent),
                                    FEDSEED_HOME=str(server_home), FEDSEED_PORT=str(port),
                                    FLWR_HOME=str(tmp_path / "flwr-superlink")))
    cli_home = tmp_path / "flwr-cli"
    add_connection(make_connection(CONNECTION, f"127.0.0.1:{port}", certs.ca_cert),
                   cli_home / "config.toml")
    wait_for_port(port, link)
    return port, base_env(FLWR_HOME=str(cli_home)), server_home


def _device(tmp_path: Path, processes: Any, name: str, port: int, data: str,
            *extra: str) -> subprocess.Popen[bytes]:
    """Start SuperNode ``name`` with its auth key ``auth/NAME`` and FEDSEED_HOME."""
    return processes.start(name, ["bash", str(ROOT / "clients" / "launch_supernode.sh"),
                                  *extra],
                           base_env(FEDSEED_SUPERLINK=f"127.0.0.1:{port}",
                                    FEDSEED_ROOT_CERTIFICATES=str(tmp_path / "certs" / "ca.crt"),
                                    FEDSEED_AUTH_KEY=str(tmp_path / "auth" / name),
                                    FEDSEED_DATA=data, FEDSEED_KEY=name,
                                    FEDSEED_HOME=str(tmp_path / f"{name}-home"),
                                    FEDSEED_NODE_PORT=str(free_port()),
                                    FLWR_HOME=str(tmp_path / f"flwr-{name}")))


def test_flwr_run_on_a_tls_deployment_with_authenticated_supernodes(
        tmp_path, processes, quick_recipe):
    # Prepare: the coordinator, two enrolled devices with their own data and keys
    port, cli_env, server_home = _coordinator(tmp_path, processes)
    recipe_keys = {}
    for i, name in enumerate(["device-1", "device-2"]):
        auth = generate_supernode_key(name, tmp_path / "auth")
        home = tmp_path / f"{name}-home"
        recipe_keys[name] = generate_key(name, home)
        _trust(home, server_home / "keys" / "server.pub", "server", "coordinator")
        _trust(server_home, recipe_keys[name].public_path, "client", name)
        register(auth.public_key, name, cli_env)
        data = _digits_csv(tmp_path / f"{name}.csv", range(150 * i, 150 * (i + 1)))
        _device(tmp_path, processes, name, port, str(data))
    wait_online(set(supernodes(cli_env)), cli_env)

    # Execute
    config = (f'num-rounds=1 client-trust="store" auto-keys=false fraction=1.0 min-nodes=2 '
              f'min-replies=2 timeout=1200.0 recipe="{quick_recipe}"')
    run = flwr("run", ".", CONNECTION, "--run-config", config, "--stream", env=cli_env,
               timeout=HANG_GUARD)

    # Assert: the round completes with both devices, and both personalise at the end
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert "fedseed round 1: sampled 2, accepted 2" in output, output[-3000:]
    assert '"reported": 2' in output
    # The meta-recipe verifies as the server's, with every ancestor, in the registry
    # the ServerApp (a flwr-serverapp under the SuperLink) wrote to its FEDSEED_HOME
    verify = subprocess.run(
        [sys.executable, "-m", "fedseed", "recipe", "verify", "digits-quick-meta:latest",
         "--role", "server", "--chain"], cwd=tmp_path, capture_output=True, text=True,
        timeout=HANG_GUARD, env=base_env(FEDSEED_HOME=str(server_home)))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "lineage: every ancestor verified" in verify.stdout
    # ... and its parents are the two devices' round-1 recipes, signed by their keys
    assert _parent_signers(server_home) == {k.keyid for k in recipe_keys.values()}
    # Personalised weights stayed on each device
    for name in recipe_keys:
        assert list((tmp_path / f"{name}-home" / "nodes").glob("*/model.safetensors"))


def _parent_signers(server_home: Path) -> set[str]:
    from fedseed.provenance.verify import verify_envelope
    from fedseed.registry.client import open_registry

    trust = load_trust(server_home)
    registry = open_registry(str(server_home / "registry"), trust)
    meta = verify_envelope(registry.fetch("digits-quick-meta:latest"), trust, role="server")
    assert meta.recipe.lineage is not None and meta.recipe.lineage.round == 1
    parents = [verify_envelope(registry.fetch(d), trust, role="client")
               for d in meta.recipe.lineage.parents]
    return {keyid for parent in parents for keyid in parent.keyids}


def test_an_unregistered_supernode_never_joins(tmp_path, processes):
    # Prepare: a registered device and a rogue one with valid TLS but its own key
    port, cli_env, server_home = _coordinator(tmp_path, processes)
    auth = generate_supernode_key("device-1", tmp_path / "auth")
    recipe_key = generate_key("device-1", tmp_path / "device-1-home")
    enroll = subprocess.run(
        ["bash", str(ROOT / "server" / "enroll_device.sh"), "device-1", str(auth.public_key),
         str(recipe_key.public_path), CONNECTION], capture_output=True, text=True,
        timeout=HANG_GUARD, env={**cli_env, "FEDSEED_HOME": str(server_home)})
    assert enroll.returncode == 0, enroll.stdout + enroll.stderr
    (registered,) = supernodes(cli_env)
    assert "client" in load_trust(server_home).get(recipe_key.keyid).roles  # type: ignore[union-attr]
    generate_supernode_key("rogue", tmp_path / "auth")

    # Execute
    _device(tmp_path, processes, "device-1", port, "digits")
    # A SuperNode that is refused exits: with process isolation it leaves no SuperExec
    # child behind, to outlive it unstopped.
    rogue = _device(tmp_path, processes, "rogue", port, "digits", "--isolation", "process")
    wait_online({registered}, cli_env)
    deadline = time.monotonic() + HANG_GUARD
    while rogue.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)

    # Assert: the SuperLink refused its activation, and Flower 1.42's SuperNode gave up
    assert supernodes(cli_env) == {registered: "online"}
    assert "No SuperNode found with the given public key" in processes.log("superlink")
    assert rogue.returncode is not None and rogue.returncode != 0, processes.log("rogue")
    assert "Failed to activate SuperNode" in processes.log("rogue")


def test_a_supernode_trusting_another_ca_is_refused_by_tls(tmp_path, processes):
    # Prepare: a registered device given the wrong CA certificate
    port, cli_env, _ = _coordinator(tmp_path, processes)
    other = generate_tls(tmp_path / "other-certs")
    registered = register(generate_supernode_key("device-1", tmp_path / "auth").public_key,
                          "device-1", cli_env)

    # Execute
    device = processes.start(
        "device-1", [str(BIN / "flower-supernode"), "--superlink", f"127.0.0.1:{port}",
                     "--root-certificates", str(other.ca_cert), "--auth-supernode-private-key",
                     str(tmp_path / "auth" / "device-1"), "--port", str(free_port()),
                     "--isolation", "process",
                     "--node-config", "data='digits' key='device-1'"],
        base_env(FLWR_HOME=str(tmp_path / "flwr-device-1"),
                 FEDSEED_HOME=str(tmp_path / "device-1-home")))
    deadline = time.monotonic() + HANG_GUARD
    while device.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)

    # Assert: it never came online; the registration stays unused
    assert supernodes(cli_env) == {registered: "registered"}
    assert device.returncode is not None and device.returncode != 0, processes.log("device-1")
    assert "CERTIFICATE_VERIFY_FAILED" in processes.log("device-1")
