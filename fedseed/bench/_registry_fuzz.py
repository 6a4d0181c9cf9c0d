"""The HTTP registry fuzzed with schemathesis, from its own OpenAPI document.

A real ``fedseed registry serve`` process on 127.0.0.1 (started and stopped here, by
its PID) serves a store that already holds the benchmark's signed recipes. Its
``/openapi.json`` drives schemathesis: every operation, in positive mode (data the
document allows) and, where the operation takes parameters or a body, negative mode
(data it forbids). Half of the positive publishes carry a real signed envelope
instead of a generated one (a new recipe by a trusted publisher, a publisher's
recipe under a tag another publisher owns, one by an unknown, revoked or
wrong-role key, one with a tampered payload), so that publishing is fuzzed past
the signature check too.

Each response is checked by schemathesis (no 5xx, documented status code, content
type, headers and body schema; negative data refused) and the blobs in the store are
counted before and after every request: a 2xx publish may store, nothing else may.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fedseed.bench._signed_world import World, build_world
from fedseed.errors import RegistryError
from fedseed.provenance.envelope import Envelope
from fedseed.provenance.trust import save_trust
from fedseed.recipe import canonical_bytes, load_builtin
from fedseed.recipe.codec import digest_bytes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(store: Path, trust_file: Path, home: Path) -> tuple[subprocess.Popen[bytes], str]:
    import httpx

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = home / "server.log"
    home.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "fedseed", "registry", "serve", "--store", str(store),
             "--port", str(port), "--trust", str(trust_file)],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "FEDSEED_HOME": str(home)})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RegistryError(f"registry server exited with {process.returncode}: "
                               + log.read_text(errors="replace")[-400:])
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    _stop(process)
    raise RegistryError(f"registry server on port {port} not healthy within 60 s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _blobs(store: Path) -> int:
    folder = store / "blobs"
    return sum(1 for _ in folder.iterdir()) if folder.is_dir() else 0


def _real_body(world: World, choice: str, seed: int) -> dict[str, Any]:
    """A real signed envelope for a publish (see the module docstring)."""
    import json

    base = load_builtin("digits-mlp")
    recipe = base.model_copy(update={"init": base.init.model_copy(update={"seed": seed})})
    payload = canonical_bytes(recipe)
    if choice == "tampered":
        signed = world.sign(payload, "alice")
        data = json.loads(payload)
        data["budget"]["max_steps"] = 999
        return Envelope(payload=json.dumps(data).encode(),
                        signatures=signed.signatures).to_dict()
    if choice == "cosigned-by-unknown":
        return world.ledger.sign(world.sign(payload, "alice"), world.keys["mallory"]).to_dict()
    if choice == "republish":
        return world.published[seed % len(world.published)].to_dict()
    signer = {"new": "alice", "other-publisher": "bob", "unknown": "mallory",
              "revoked": "retired", "wrong-role": "client"}[choice]
    return world.sign(payload, signer).to_dict()


_CHOICES = ("new", "other-publisher", "unknown", "revoked", "wrong-role", "tampered",
            "cosigned-by-unknown", "republish")


def fuzz(workdir: Path, cases: int, seed: int,
         on_case: Callable[[], None] | None = None) -> dict[str, Any]:
    """Run ``cases`` schemathesis cases against a fresh registry server."""
    import httpx
    import schemathesis
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis import seed as fixed_seed
    from hypothesis import strategies as st
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        negative_data_rejection,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    world = build_world()
    store = workdir / "store"
    trust_file = save_trust(world.registry_trust, path=workdir / "trust.json")
    process, url = _start(store, trust_file, workdir / "home")
    checks = [not_a_server_error, status_code_conformance, content_type_conformance,
              response_headers_conformance, response_schema_conformance,
              negative_data_rejection]
    statuses: Counter[str] = Counter()
    by_operation: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    examples: list[dict[str, Any]] = []
    blobs = {"before": 0, "after": 0, "stored_by_2xx": 0, "stored_by_refused": 0,
             "stored_by_reads": 0}
    try:
        for envelope in world.published:  # something to fetch
            httpx.post(url + "/v1/recipes", content=envelope.to_json(), timeout=30,
                       headers={"content-type": "application/json"}).raise_for_status()
        httpx.post(url + "/v1/recipes", params={"name": "shared", "tag": "latest"},
                   content=world.sign(world.recipes[1], "alice").to_json(),
                   timeout=30).raise_for_status()
        blobs["before"] = _blobs(store)
        known = sorted(digest_bytes(e.payload) for e in world.published)
        tags = [("digits-mlp", "latest"), ("text-bert-tiny", "latest"), ("shared", "latest")]
        schema = schemathesis.openapi.from_url(url + "/openapi.json",
                                               config=schemathesis.Config())
        operations = [result.ok() for result in schema.get_all_operations()]
        pairs = [(op, mode) for op in operations for mode in GenerationMode
                 if mode is GenerationMode.POSITIVE or _has_inputs(op)]

        @fixed_seed(seed)
        @settings(max_examples=cases, database=None, deadline=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet,
                  report_multiple_bugs=False)
        @given(st.data())
        def one(data: st.DataObject) -> None:
            op, mode = data.draw(st.sampled_from(pairs), label="operation")
            case = data.draw(op.as_strategy(generation_mode=mode), label="case")
            label = f"{op.label} {mode.value}"
            data.draw(st.integers(0, 2**32), label="nonce")  # repeat parameterless GETs
            positive = mode is GenerationMode.POSITIVE
            if op.path == "/v1/recipes/{digest}" and positive and data.draw(st.booleans()):
                case.path_parameters = {"digest": data.draw(st.sampled_from(known))}
                label += " known"
            if op.path == "/v1/tags/{name}/{tag}" and positive and data.draw(st.booleans()):
                case.path_parameters = dict(zip(("name", "tag"), data.draw(
                    st.sampled_from(tags)), strict=True))
                label += " known"
            if op.method.upper() == "POST" and positive \
                    and data.draw(st.booleans(), label="real envelope"):
                choice = data.draw(st.sampled_from(_CHOICES), label="envelope")
                case.body = _real_body(world, choice, data.draw(st.integers(1, 10**6)))
                if choice == "other-publisher":
                    case.query = {"name": "shared", "tag": "latest"}
                label += f" real:{choice}"
            before = _blobs(store)
            response = case.call(base_url=url, timeout=30)
            after = _blobs(store)
            status = response.status_code
            statuses[str(status)] += 1
            by_operation[label] += 1
            changed = after != before
            if changed and op.method.upper() != "POST":
                blobs["stored_by_reads"] += 1
            elif changed and status >= 300:
                blobs["stored_by_refused"] += 1
            elif changed:
                blobs["stored_by_2xx"] += after - before
            found = _failures(case, response, checks)
            for name in found:
                failures[name] += 1
            if (found or (changed and status >= 300)) and len(examples) < 10:
                examples.append({"operation": label, "status": status, "failures": found,
                                 "curl": case.as_curl_command(base_url=url)[:500],
                                 "response": response.text[:300]})
            if on_case:
                on_case()

        one()
        if process.poll() is not None:
            raise RegistryError(f"registry server died during the run (exit "
                               f"{process.returncode})")
        blobs["after"] = _blobs(store)
    finally:
        _stop(process)
    server_errors = sum(n for code, n in statuses.items() if code.startswith("5"))
    schema_failures = {k: v for k, v in failures.items() if k != "not_a_server_error"}
    return {"schemathesis": schemathesis.__version__, "seed": seed,
            "cases": sum(statuses.values()), "operations": dict(sorted(by_operation.items())),
            "statuses": dict(sorted(statuses.items())), "server_errors": server_errors,
            "schema_violations": sum(schema_failures.values()),
            "check_failures": dict(sorted(failures.items())), "blobs": blobs,
            "examples": examples,
            "checks": [c.__name__ for c in checks]}


def _has_inputs(operation: Any) -> bool:
    """Whether negative data exists for ``operation`` (parameters or a body)."""
    return any(True for _ in operation.path_parameters) or any(True for _ in operation.query) \
        or bool(list(operation.body))


def _failures(case: Any, response: Any, checks: list[Any]) -> list[str]:
    """Names of the schemathesis checks that ``response`` fails (one check at a time,
    so that each failure is named by the check that found it)."""
    from schemathesis.core.failures import Failure, FailureGroup

    failed = []
    for check in checks:
        try:
            case.validate_response(response, checks=[check])
        except (FailureGroup, Failure):
            failed.append(check.__name__)
    return failed
