"""fedseed: federated personalization in which only small signed recipes travel.

The library's public names, importable from ``fedseed`` itself::

    from fedseed import FedseedStrategy, RoundSettings, InProcessTransport, server_identity

They are loaded on first use, so ``import fedseed`` (and ``fedseed --help``) stays fast:
torch, transformers and flwr load only when something that needs them runs.
See docs/library.md.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_EXPORTS = {
    # Running a federation yourself
    "FedseedStrategy": "fedseed.federation.strategy",
    "RoundSettings": "fedseed.federation.strategy",
    "FederationResult": "fedseed.federation.strategy",
    "Instruction": "fedseed.federation.strategy",
    "NodeReply": "fedseed.federation.strategy",
    "Delivery": "fedseed.federation.strategy",
    "Transport": "fedseed.federation.strategy",
    "InProcessTransport": "fedseed.federation.in_process",
    "GridTransport": "fedseed.app.transport",
    "make_client_app": "fedseed.app.client_app",
    "server_identity": "fedseed.federation.identity",
    "FederationConfig": "fedseed.federation.config",
    # Aggregators
    "Aggregator": "fedseed.meta.base",
    "AggregatorState": "fedseed.meta.base",
    "ClientReply": "fedseed.meta.base",
    "Options": "fedseed.meta.base",
    "get_aggregator": "fedseed.meta",
    "AGGREGATORS": "fedseed.meta",
    # Recipes
    "Recipe": "fedseed.recipe.model",
    "Lineage": "fedseed.recipe.evidence",
    "load_builtin": "fedseed.recipe.builtin",
    "resolve_recipe": "fedseed.recipe.builtin",
    "recipe_digest": "fedseed.recipe.codec",
    "with_step_budget": "fedseed.recipe.overrides",
    "apply_overrides": "fedseed.recipe.overrides",
    # Data and local training
    "Examples": "fedseed.data.examples",
    "load_examples": "fedseed.data.local",
    "partition": "fedseed.data.partition",
    "personalize_examples": "fedseed.personalize",
    # Differential privacy
    "PrivacySettings": "fedseed.privacy.settings",
    "DevicePolicy": "fedseed.privacy.device",
    "Ledger": "fedseed.privacy.device",
    # Trust and registries
    "TrustStore": "fedseed.provenance.trust",
    "load_trust": "fedseed.provenance.trust",
    "open_registry": "fedseed.registry.client",
    # Errors
    "FedseedError": "fedseed.errors",
}

__all__ = [
    "AGGREGATORS", "Aggregator", "AggregatorState", "ClientReply", "Delivery", "Examples",
    "FederationConfig", "FederationResult", "FedseedError", "FedseedStrategy", "GridTransport",
    "InProcessTransport", "Instruction", "Lineage", "NodeReply", "Options", "Recipe",
    "RoundSettings", "Transport", "TrustStore", "__version__", "get_aggregator",
    "load_builtin", "load_examples", "load_trust", "make_client_app", "open_registry",
    "partition", "personalize_examples", "recipe_digest", "resolve_recipe", "server_identity",
    "apply_overrides", "with_step_budget", "PrivacySettings", "DevicePolicy", "Ledger",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fedseed' has no attribute '{name}'")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
