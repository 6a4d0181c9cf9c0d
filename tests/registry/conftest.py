"""Fixtures for the registry tests: keys, trust files, recipe files, and real
``fedseed registry serve`` processes on 127.0.0.1, each stopped by its PID."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
from support import ASSETS, HANG_GUARD, ROOT  # noqa: F401  (shared paths)

from fedseed.provenance.envelope import Envelope, sign_envelope
from fedseed.provenance.keys import KeyInfo, generate_key, list_keys, load_private_key
from fedseed.provenance.trust import TrustStore, save_trust
from fedseed.recipe import (
    CurvePoint,
    Evidence,
    ExampleCounts,
    FinalMetrics,
    Recipe,
    canonical_bytes,
    canonical_dict,
    child_recipe,
    load_builtin,
    read_recipe_file,
    recipe_from_dict,
)

KEY_NAMES = ("alice", "bob", "mallory")


def _variant(seed: int, name: str = "digits-mlp") -> Recipe:
    data = canonical_dict(load_builtin("digits-mlp"))
    data["init"]["seed"] = seed
    data["name"] = name
    return recipe_from_dict(data)


def _child_of(parent: Recipe) -> Recipe:
    evidence = Evidence(
        curve=[CurvePoint(step=10, train_loss=1.5, val_loss=1.4, val_metric=0.6)],
        final=FinalMetrics(val_loss=1.4, val_metric=0.6),
        num_examples=ExampleCounts(train=100, validation=20, test=20),
        steps=10, best_step=10, stopped_early=False, wall_seconds=0.5,
    )
    return child_recipe(parent, parent, evidence,
                        created=datetime(2026, 1, 1, tzinfo=timezone.utc))


@pytest.fixture
def variant() -> Callable[..., Recipe]:
    """``variant(seed, name="digits-mlp")``: digits-mlp with another ``init.seed``
    (and name), so every seed has its own digest."""
    return _variant


@pytest.fixture
def child_of() -> Callable[[Recipe], Recipe]:
    """``child_of(parent)``: a client recipe derived from ``parent`` (with evidence;
    ``lineage.parents`` is ``[digest of parent]``), as a device reports it."""
    return _child_of


@pytest.fixture
def recipe_file(tmp_path: Path) -> Callable[..., Path]:
    """``recipe_file(seed=0, name=..., parent=None)``: write an unsigned recipe file.

    With ``parent`` (a recipe file), the recipe is a client recipe derived from it:
    ``lineage.parents`` is ``[digest of parent]``, as ``fedseed personalize`` writes."""

    def write(seed: int = 0, name: str = "digits-mlp", parent: Path | None = None) -> Path:
        if parent is None:
            recipe, path = _variant(seed, name), tmp_path / f"{name}-{seed}.json"
        else:
            recipe, path = _child_of(read_recipe_file(parent)), parent.with_suffix(".child.json")
        path.write_text(json.dumps(canonical_dict(recipe), indent=2))
        return path

    return write


@pytest.fixture(scope="session")
def assets() -> Path:
    """tests/assets: good, tampered and truncated envelopes by the fixed asset key."""
    return ASSETS


@pytest.fixture(scope="session")
def keyring(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home holding alice, bob and mallory's keys (generated once per session)."""
    home = tmp_path_factory.mktemp("keyring")
    for name in KEY_NAMES:
        generate_key(name, home=home)
    return home


@pytest.fixture
def keys(keyring: Path) -> dict[str, KeyInfo]:
    """The keyring copied into this test's FEDSEED_HOME; nothing trusted yet."""
    home = Path(os.environ["FEDSEED_HOME"])
    shutil.copytree(keyring / "keys", home / "keys")
    return {info.name: info for info in list_keys(home)}


@pytest.fixture
def trust(keys: dict[str, KeyInfo]) -> Callable[..., None]:
    """``trust("alice", ...)``: trust keys as publisher in this test's FEDSEED_HOME."""

    def add(*names: str) -> None:
        store = TrustStore()
        for name in names:
            store, _ = store.add(keys[name].public_path.read_bytes(), "publisher", name)
        save_trust(store)

    return add


@pytest.fixture
def sign(keyring: Path) -> Callable[..., Envelope]:
    """``sign(recipe, key="alice")``: a DSSE envelope around the canonical bytes."""

    def make(recipe: Recipe, key: str = "alice") -> Envelope:
        private, keyid = load_private_key(key, home=keyring)
        return sign_envelope(Envelope(payload=canonical_bytes(recipe)), private, keyid)

    return make


@pytest.fixture(scope="session")
def server_trust(keyring: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A server trust file: alice and the asset key are publishers; bob and mallory
    are not trusted."""
    store = TrustStore()
    store, _ = store.add((keyring / "keys" / "alice.pub").read_bytes(), "publisher", "alice")
    store, _ = store.add((ASSETS / "publisher.pub").read_bytes(), "publisher", "assets")
    return save_trust(store, path=tmp_path_factory.mktemp("server-trust") / "trust.json")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A running ``fedseed registry serve`` process."""

    url: str
    port: int
    store: Path
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        """SIGTERM by PID, SIGKILL if it does not exit within 10 s; idempotent."""
        if self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def count(self) -> int:
        """How many recipes the server lists."""
        response = httpx.get(f"{self.url}/v1/recipes", timeout=10)
        response.raise_for_status()
        return len(response.json())

    def held(self) -> tuple[int, set[str]]:
        """What the server holds: how many recipes it lists, and every file (hidden
        ones included) under its blob folder."""
        blobs = self.store / "blobs"
        return self.count(), {p.name for p in blobs.iterdir()} if blobs.is_dir() else set()


@pytest.fixture(scope="session")
def launch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Server]]:
    """``launch(store, trust, port=None)``: start a server and wait for /healthz.

    Whoever launches stops (:meth:`Server.stop`); anything still running at the end
    of the session is stopped here, by PID."""
    launched: list[Server] = []
    home = tmp_path_factory.mktemp("server-home")

    def start(store: Path, trust_file: Path, port: int | None = None) -> Server:
        port = port or free_port()
        log_path = home / f"server-{port}-{len(launched)}.log"
        env = {**os.environ, "FEDSEED_HOME": str(home)}
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "fedseed", "registry", "serve", "--store", str(store),
                 "--port", str(port), "--trust", str(trust_file)],
                stdout=log, stderr=subprocess.STDOUT, env=env,
            )
        server = Server(f"http://127.0.0.1:{port}", port, store, process)
        launched.append(server)
        deadline = time.monotonic() + HANG_GUARD
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"registry server exited with {process.returncode}: "
                                   + log_path.read_text(errors="replace"))
            try:
                if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                    return server
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        server.stop()
        raise RuntimeError(f"registry server on port {port} not healthy within "
                           f"{HANG_GUARD:.0f} s")

    yield start
    for server in launched:
        server.stop()


@pytest.fixture
def serve(launch: Callable[..., Server], server_trust: Path,
          tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """``serve(store=None, port=None, trust_file=None)``: a server for this test,
    stopped after it (by default on tmp_path/store, trusting as ``server_trust``)."""
    mine: list[Server] = []

    def start(store: Path | None = None, port: int | None = None,
              trust_file: Path | None = None) -> Server:
        server = launch(store or tmp_path / "store", trust_file or server_trust, port)
        mine.append(server)
        return server

    yield start
    for server in mine:
        server.stop()


@pytest.fixture(scope="module")
def server(launch: Callable[..., Server], server_trust: Path,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server per test module, on its own store; alice and the asset key are its
    trusted publishers, bob and mallory are not."""
    running = launch(tmp_path_factory.mktemp("module-server") / "store", server_trust)
    yield running
    running.stop()
