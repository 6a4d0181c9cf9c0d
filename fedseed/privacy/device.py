"""A device's own privacy policy: what it insists on before it sends anything, checked
against its own ledger rather than against what the server's meta-recipe claims.

Under local DP the server is not trusted, so a device cannot take the signed
``privacy`` section's word for it: a curious server could drop the section, lower the
noise, or reset ``epsilon`` every round. A device with a policy (node config
``dp-require = "local"``, ``dp-max-epsilon``, optional ``dp-max-delta``) refuses a
round unless the meta-recipe makes it add the noise itself, and unless the epsilon of
every round it has sent in (its ledger, one noise multiplier per release, in
``$FEDSEED_HOME/nodes/<node>/privacy-ledger.json``, per recipe name: every federation
of one recipe composes, which errs on the safe side) plus this one stays within its
bound. It also refuses the final evaluation, whose metrics are exact.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from fedseed._internal.atomic import atomic_write_bytes
from fedseed.errors import DataError, VerificationError
from fedseed.recipe.model import Recipe


@dataclass(frozen=True)
class DevicePolicy:
    """``require``: ``local`` (noise added on this device only) or ``central`` (a server
    this device trusts may add it); ``max_epsilon`` over every round of a federation
    this device sends in, at the meta-recipe's delta, which must not exceed
    ``max_delta``."""

    require: Literal["local", "central"] = "local"
    max_epsilon: float = 8.0
    max_delta: float = 1e-5

    def __post_init__(self) -> None:
        if self.require not in ("local", "central") or not self.max_epsilon > 0 \
                or not 0 < self.max_delta < 1:
            raise DataError(f"device privacy policy: dp-require must be local or central "
                            f"(not {self.require!r}), dp-max-epsilon positive (not "
                            f"{self.max_epsilon}), dp-max-delta in (0, 1) (not "
                            f"{self.max_delta})")


def policy_from_node_config(config: Mapping[str, Any]) -> DevicePolicy | None:
    """The node config's ``dp-require`` / ``dp-max-epsilon`` / ``dp-max-delta``; None
    without ``dp-require``."""
    if "dp-require" not in config:
        if "dp-max-epsilon" in config or "dp-max-delta" in config:
            raise DataError("node config sets dp-max-epsilon or dp-max-delta without "
                            "dp-require; add dp-require = \"local\" (or \"central\")")
        return None
    try:
        return DevicePolicy(require=str(config["dp-require"]),  # type: ignore[arg-type]
                            max_epsilon=float(config.get("dp-max-epsilon", 8.0)),
                            max_delta=float(config.get("dp-max-delta", 1e-5)))
    except (TypeError, ValueError) as e:
        raise DataError(f"node config: dp-max-epsilon / dp-max-delta must be numbers ({e})"
                        ) from e


class Ledger:
    """The noise multipliers of every release this device made, per recipe name."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, list[float]]:
        if not self.path.is_file():
            return {}
        try:
            data = json.loads(self.path.read_text())
            return {str(k): [float(x) for x in v] for k, v in data.items()}
        except (OSError, ValueError, TypeError, AttributeError) as e:
            # A ledger that cannot be read must not read as "nothing spent".
            raise DataError(f"{self.path}: the privacy ledger cannot be read ({e}); "
                            "restore it, or this device sends nothing more") from e

    def releases(self, federation: str) -> list[float]:
        return self._read().get(federation, [])

    def record(self, federation: str, noise_multiplier: float) -> None:
        data = self._read()
        data.setdefault(federation, []).append(noise_multiplier)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.path, (json.dumps(data, indent=1) + "\n").encode())


def check_round(meta: Recipe, policy: DevicePolicy, ledger: Ledger) -> float:
    """Refuse (``VerificationError``) a round that breaks ``policy``; return the
    noise multiplier the device will spend on it."""
    from fedseed.privacy.accountant import epsilon_of_releases

    p = meta.privacy
    if p is None:
        raise VerificationError("this device requires differential privacy "
                                f"({policy.require}) and the meta-recipe has none",
                                reason="privacy-policy")
    if policy.require == "local" and p.mode != "local":
        raise VerificationError("this device adds its own noise only (dp-require local); "
                                f"the meta-recipe asks for {p.mode} DP",
                                reason="privacy-policy")
    if p.delta > policy.max_delta:
        raise VerificationError(f"the meta-recipe's delta {p.delta:g} exceeds this "
                                f"device's dp-max-delta {policy.max_delta:g}",
                                reason="privacy-policy")
    spent = ledger.releases(meta.name)
    after = epsilon_of_releases([*spent, p.noise_multiplier], p.delta, p.population)
    if after > policy.max_epsilon:
        raise VerificationError(f"this round would take this device to epsilon {after:.3g} "
                                f"over {len(spent) + 1} rounds, past its dp-max-epsilon "
                                f"{policy.max_epsilon:g}", reason="privacy-policy")
    return p.noise_multiplier


__all__ = ["DevicePolicy", "Ledger", "check_round", "policy_from_node_config"]
