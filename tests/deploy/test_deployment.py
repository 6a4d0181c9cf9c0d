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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from deployed import Processes
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


@dataclass
class Deployment:
    """One coordinator (TLS, SuperNode authentication) with two enrolled devices online,
    shared by this module's tests: a SuperLink and its SuperNodes take ~20 s to start on
    a 2-core machine, and each test below asserts on a different part of the same
    deployment."""

    root: Path
    processes: Processes
    port: int
    cli_env: dict[str, str]
    server_home: Path
    nodes: dict[str, int]
    recipe_keys: dict[str, Any]

    def online(self) -> dict[int, str]:
        """The enrolled devices' node ids -> status (other tests' nodes left out)."""
        listed = supernodes(self.cli_env)
        return {n: listed.get(n, "absent") for n in self.nodes.values()}


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("deployment")
    (root / "logs").mkdir()
    processes = Processes(root / "logs")
    try:
        port, cli_env, server_home = _coordinator(root, processes)
        nodes, recipe_keys = {}, {}
        for i, name in enumerate(["device-1", "device-2"]):
            auth = generate_supernode_key(name, root / "auth")
            home = root / f"{name}-home"
            recipe_keys[name] = generate_key(name, home)
            _trust(home, server_home / "keys" / "server.pub", "server", "coordinator")
            if name == "device-1":
                # As an operator enrolls a device: the script registers the SuperNode key
                # and trusts the recipe key for the `client` role.
                before = set(supernodes(cli_env))
                enroll = subprocess.run(
                    ["bash", str(ROOT / "server" / "enroll_device.sh"), name,
                     str(auth.public_key), str(recipe_keys[name].public_path), CONNECTION],
                    capture_output=True, text=True, timeout=HANG_GUARD,
                    env={**cli_env, "FEDSEED_HOME": str(server_home)})
                assert enroll.returncode == 0, enroll.stdout + enroll.stderr
                (nodes[name],) = set(supernodes(cli_env)) - before
                trusted = load_trust(server_home).get(recipe_keys[name].keyid)
                assert trusted is not None and "client" in trusted.roles
            else:
                _trust(server_home, recipe_keys[name].public_path, "client", name)
                nodes[name] = register(auth.public_key, name, cli_env)
            data = _digits_csv(root / f"{name}.csv", range(150 * i, 150 * (i + 1)))
            _device(root, processes, name, port, str(data))
        wait_online(set(nodes.values()), cli_env)
        yield Deployment(root, processes, port, cli_env, server_home, nodes, recipe_keys)
    finally:
        processes.stop_all()


def test_flwr_run_on_a_tls_deployment_with_authenticated_supernodes(deployment, quick_recipe):
    # Prepare: the coordinator and two enrolled devices with their own data and keys
    d = deployment

    # Execute
    config = (f'num-rounds=1 client-trust="store" auto-keys=false fraction=1.0 min-nodes=2 '
              f'min-replies=2 timeout=1200.0 recipe="{quick_recipe}"')
    run = flwr("run", ".", CONNECTION, "--run-config", config, "--stream", env=d.cli_env,
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
         "--role", "server", "--chain"], cwd=d.root, capture_output=True, text=True,
        timeout=HANG_GUARD, env=base_env(FEDSEED_HOME=str(d.server_home)))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "lineage: every ancestor verified" in verify.stdout
    # ... and its parents are the two devices' round-1 recipes, signed by their keys
    assert _parent_signers(d.server_home) == {k.keyid for k in d.recipe_keys.values()}
    # Personalised weights stayed on each device
    for name in d.recipe_keys:
        assert list((d.root / f"{name}-home" / "nodes").glob("*/model.safetensors"))


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


def test_an_unregistered_supernode_never_joins(deployment):
    # Prepare: a rogue device with valid TLS but a SuperNode key nobody registered
    d = deployment
    generate_supernode_key("rogue", d.root / "auth")

    # Execute. A SuperNode that is refused exits: with process isolation it leaves no
    # SuperExec child behind, to outlive it unstopped.
    rogue = _device(d.root, d.processes, "rogue", d.port, "digits", "--isolation", "process")
    deadline = time.monotonic() + HANG_GUARD
    while rogue.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)

    # Assert: the SuperLink refused its activation, and Flower 1.42's SuperNode gave up;
    # the enrolled devices are the only nodes online
    assert rogue.returncode is not None and rogue.returncode != 0, d.processes.log("rogue")
    assert "Failed to activate SuperNode" in d.processes.log("rogue")
    assert "No SuperNode found with the given public key" in d.processes.log("superlink")
    online = supernodes(d.cli_env)
    assert {n for n, status in online.items() if status == "online"} == set(d.nodes.values())


def test_a_supernode_trusting_another_ca_is_refused_by_tls(deployment):
    # Prepare: a registered device given the wrong CA certificate
    d = deployment
    other = generate_tls(d.root / "other-certs")
    registered = register(generate_supernode_key("device-3", d.root / "auth").public_key,
                          "device-3", d.cli_env)

    # Execute
    device = d.processes.start(
        "device-3", [str(BIN / "flower-supernode"), "--superlink", f"127.0.0.1:{d.port}",
                     "--root-certificates", str(other.ca_cert), "--auth-supernode-private-key",
                     str(d.root / "auth" / "device-3"), "--port", str(free_port()),
                     "--isolation", "process",
                     "--node-config", "data='digits' key='device-3'"],
        base_env(FLWR_HOME=str(d.root / "flwr-device-3"),
                 FEDSEED_HOME=str(d.root / "device-3-home")))
    deadline = time.monotonic() + HANG_GUARD
    while device.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)

    # Assert: it never came online; the registration stays unused
    assert supernodes(d.cli_env)[registered] == "registered"
    assert device.returncode is not None and device.returncode != 0, d.processes.log("device-3")
    assert "CERTIFICATE_VERIFY_FAILED" in d.processes.log("device-3")
