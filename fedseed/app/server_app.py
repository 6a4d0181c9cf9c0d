"""The fedseed ServerApp: a thin Flower shell over
:class:`fedseed.federation.strategy.FedseedStrategy`.

It reads ``$FEDSEED_HOME`` once, here at the edge (the server key and the trust
store), builds the strategy's collaborators from the run config
(:mod:`fedseed.federation.from_config`; keys are those of
:class:`fedseed.federation.config.FederationConfig`, ``[tool.flwr.app.config]`` in
pyproject.toml), and runs it over the Grid. Trust-on-first-use client keys are
written back to the trust store, so lineage through their recipes verifies later.
"""

from __future__ import annotations

import json
from logging import INFO
from typing import Any

from flwr.app import Context
from flwr.common.logger import log
from flwr.serverapp import Grid, ServerApp

from fedseed.app.transport import GridTransport
from fedseed.federation.config import FederationConfig
from fedseed.federation.from_config import aggregator_for, round_settings, starting_recipe
from fedseed.federation.identity import server_identity
from fedseed.federation.strategy import Event, FederationResult, FedseedStrategy
from fedseed.provenance.trust import TrustStore, load_trust, save_trust
from fedseed.registry.client import open_registry


def run_federation(grid: Grid, cfg: FederationConfig,
                   on_event: Event | None = None) -> FederationResult:
    """Run ``cfg.num_rounds`` rounds on ``grid``; return the table and lineage."""
    key, trust = server_identity(cfg.server_key, create=cfg.auto_keys)

    def event(kind: str, value: Any) -> None:
        if kind == "round":  # one line per round in Flower's log (`flwr run --stream`)
            log(INFO, "fedseed round %d: sampled %d, accepted %d, rejected %s, val mean %s, "
                "bytes down/up %d/%d", value.round, value.sampled, value.accepted,
                dict(value.rejected), value.val_mean, value.bytes_down, value.bytes_up)
        if on_event is not None:
            on_event(kind, value)

    strategy = FedseedStrategy(
        aggregator_for(cfg), starting_recipe(cfg, trust), key=key, trust=trust,
        registry=open_registry(cfg.registry or None, trust), settings=round_settings(cfg),
        on_trust=save_client_keys, on_event=event)
    return strategy.start(GridTransport(grid), resume=cfg.resume)


def save_client_keys(trust: TrustStore) -> None:
    """Merge the strategy's client keys into the trust store on disk (another process
    may have changed it since it was read)."""
    current = load_trust()
    for entry in trust.keys:
        known = current.get(entry.keyid)
        if "client" in entry.roles and entry.revoked is None and (
                known is None or (known.revoked is None and "client" not in known.roles)):
            current, _ = current.add(entry.public_pem.encode(), "client", entry.name)
    save_trust(current)


def make_server_app(config: FederationConfig | None = None, on_event: Event | None = None,
                    results: list[FederationResult] | None = None) -> ServerApp:
    """A ServerApp running :func:`run_federation`; ``config`` defaults to the run config."""
    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        cfg = config or FederationConfig.from_run_config(context.run_config)
        result = run_federation(grid, cfg, on_event)
        if results is not None:
            results.append(result)
        log(INFO, "fedseed final: %s", json.dumps(result.final))

    return server


app = make_server_app()
