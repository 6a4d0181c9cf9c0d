"""Federation settings, read from a Flower run config (``[tool.flwr.app.config]``)
or given directly by ``fedseed simulate``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Literal

from fedseed.defaults import TRAJECTORY
from fedseed.errors import FedseedError

if TYPE_CHECKING:
    from fedseed.privacy.settings import PrivacySettings

ClientTrust = Literal["store", "tofu"]
Mode = Literal["recipes", "trajectory"]


@dataclass(frozen=True)
class FederationConfig:
    """Everything a federation run needs to know; keys match the run config
    (``num_rounds`` is ``num-rounds`` there).

    ``client_trust`` decides which client signatures the server accepts:
    ``auto_keys`` makes the server create its signing key on first use and trust it
    for the ``server`` role in ``$FEDSEED_HOME`` — right for simulations, where the
    simulated clients share that folder, and wrong for real devices, which must be
    given the server's public key. ``resume`` continues from the last meta-recipe
    published in the registry.

    A round closes when every sampled node replied, or ``grace`` seconds after a
    share ``quorum`` of them did, or ``timeout`` seconds after it began (a guard
    against a hung federation; :mod:`fedseed.app.collect`).

    ``store`` (the default) only keys the operator trusted for the ``client`` role;
    ``tofu`` binds each node id to the first key it signs with and refuses any other
    key from that node later. ``store`` is the default because it is the only mode
    in which an unknown device cannot contribute at all; ``tofu`` suits simulations
    and pilots where enrolling every device's key first is impractical.
    """

    num_rounds: int = 3
    fraction: float = 0.5
    min_nodes: int = 2
    min_replies: int = 1
    timeout: float = 600.0
    quorum: float = 1.0
    grace: float = 0.0
    recipe: str = "digits-mlp"
    dataset: str = "digits"
    partitioner: str = "dirichlet"
    alpha: float = 0.5
    # Your own data instead of a built-in set: a CSV, JSONL, Parquet file or a
    # save_to_disk folder every simulated node reads, then partitioned by the
    # ``partition_by`` column (one user per value) or by ``partitioner``.
    data: str = ""
    partition_by: str = ""
    text_column: str = "text"
    label_column: str = "label"
    aggregator: str = "best"
    robust: bool = True
    budget_from_curves: bool = True
    warm_start: bool = False
    client_trust: ClientTrust = "store"
    server_key: str = "server"
    registry: str = ""
    seed: int = 0
    max_steps: int = 0
    final_personalization: bool = True
    auto_keys: bool = False
    resume: bool = False
    mode: Mode = "recipes"
    # Seed-trajectory settings: defined once, in fedseed.defaults.
    pool_size: int = TRAJECTORY.pool_size
    zo_steps: int = TRAJECTORY.steps
    zo_lr: float = TRAJECTORY.lr
    zo_epsilon: float = TRAJECTORY.epsilon
    seeds_per_step: int = TRAJECTORY.seeds_per_step
    sampling: str = TRAJECTORY.sampling
    server_lr: float = TRAJECTORY.server_lr
    # First-order seed projection (Ferret): mode trajectory, trajectory-method first-order.
    trajectory_method: str = "zeroth-order"
    projection_k: int = 1024
    projection_lr: float = 1.0
    projection_dtype: str = "float32"
    # auto: a dense Gaussian basis per tensor up to 1M values, a Count Sketch above;
    # count-sketch: a Count Sketch for every tensor (O(D) per round instead of K x D
    # generated numbers: for models whose dense bases are too slow to generate).
    projection_basis: str = "auto"
    # Users with different tasks (fedseed.meta.tasks): label counts a device may train
    # instead of the recipe's, comma-separated ("10,2"); empty: one task.
    task_labels: str = ""
    # Differential privacy (fedseed.privacy, docs/privacy.md): off, central (a trusted
    # server adds the noise) or local (every device adds its own). dp-epsilon: the
    # target the noise is calibrated to (0: none, then dp-noise-multiplier is used and
    # nothing stops the run); dp-delta 0: 1 / number of devices.
    dp: str = "off"
    dp_epsilon: float = 0.0
    dp_delta: float = 0.0
    dp_noise_multiplier: float = 0.0
    dp_clip: float = 1.0
    dp_loss_bound: float = 0.0
    dp_curve_points: int = 2

    def __post_init__(self) -> None:
        checks = [
            (1 <= self.num_rounds <= 10_000, "num-rounds must be 1..10000"),
            (0.0 < self.fraction <= 1.0, "fraction must be in (0, 1]"),
            (self.min_nodes >= 1, "min-nodes must be at least 1"),
            (self.min_replies >= 0, "min-replies must be at least 0"),
            (self.timeout > 0, "timeout must be positive"),
            (0.0 < self.quorum <= 1.0, "quorum must be in (0, 1]"),
            (0.0 <= self.grace <= self.timeout, "grace must be in [0, timeout]"),
            (self.partitioner in ("iid", "dirichlet", "natural"),
             "partitioner must be iid, dirichlet or natural"),
            (self.alpha > 0, "alpha must be positive"),
            (bool(self.data) or not self.partition_by,
             "partition-by names a column of your data file: set data too"),
            (not self.data or self.dataset == "digits",
             f"data '{self.data}' and dataset '{self.dataset}' both name what to federate; "
             "keep one"),
            (not self.partition_by or self.partitioner in ("dirichlet", "natural"),
             f"partition-by '{self.partition_by}' is a natural partition (one user per "
             f"value); drop partitioner '{self.partitioner}'"),
            (self.client_trust in ("store", "tofu"), "client-trust must be store or tofu"),
            (self.max_steps >= 0, "max-steps must be 0 (recipe's own) or positive"),
            (self.mode in ("recipes", "trajectory"), "mode must be recipes or trajectory"),
            (self.mode == "recipes" or self.aggregator in ("best", "trajectory"),
             f"mode trajectory aggregates seeds, not configurations: drop aggregator "
             f"'{self.aggregator}'"),
            (self.mode == "trajectory" or self.aggregator != "trajectory",
             "aggregator 'trajectory' shares a model as seeds: set mode = 'trajectory' "
             "(and leave the aggregator out)"),
            (self.mode == "recipes" or not self.warm_start,
             "warm-start pools Adam moments of configurations, which mode trajectory "
             "does not train: drop warm-start or use mode = 'recipes'"),
            (1 <= self.pool_size <= 4096, "pool-size must be 1..4096"),
            (1 <= self.zo_steps <= 1_000_000, "zo-steps must be 1..1000000"),
            (0 < self.zo_lr <= 10 and 0 < self.zo_epsilon <= 1,
             "zo-lr must be in (0, 10] and zo-epsilon in (0, 1]"),
            (1 <= self.seeds_per_step <= self.pool_size,
             "seeds-per-step must be 1..pool-size"),
            (self.sampling in ("uniform", "pro"), "sampling must be uniform or pro"),
            (0 < self.server_lr <= 100, "server-lr must be in (0, 100]"),
            (self.trajectory_method in ("zeroth-order", "first-order"),
             "trajectory-method must be zeroth-order or first-order"),
            (1 <= self.projection_k <= 65_536, "projection-k must be 1..65536"),
            (0 < self.projection_lr <= 100, "projection-lr must be in (0, 100]"),
            (self.projection_basis in ("auto", "count-sketch"),
             "projection-basis must be auto or count-sketch"),
            (self.projection_dtype in ("float32", "float16"),
             "projection-dtype must be float32 or float16"),
        ]
        for ok, message in checks:
            if not ok:
                raise FedseedError(f"federation config: {message}")
        from fedseed.meta.tasks import parse_task_labels

        try:
            parse_task_labels(self.task_labels)
        except FedseedError as e:
            raise FedseedError(f"federation config: {e}") from e
        if self.dp not in ("off", "central", "local"):
            raise FedseedError(f"federation config: dp must be off, central or local, not "
                               f"'{self.dp}'")
        if self.dp == "off":
            changed = [name for name in DP_FIELDS
                       if getattr(self, name) != getattr(FederationConfig, name)]
            if changed:
                keys = ", ".join(n.replace("_", "-") for n in changed)
                raise FedseedError(f"federation config: {keys} set but dp is off; set dp = "
                                   "'central' or 'local', or drop them")
        else:
            if self.warm_start or self.task_labels:
                what = "warm-start pools Adam moments" if self.warm_start else \
                    "task-labels lets each device say its own label count"
                raise FedseedError(f"federation config: {what}, which no privacy mechanism "
                                   "covers; drop it or set dp = 'off'")
            try:
                self.privacy_settings()
            except FedseedError as e:
                raise FedseedError(f"federation config: {e}") from e
        if self.task_labels and self.mode != "recipes":
            raise FedseedError("federation config: task-labels mixes tasks in one "
                               "federation of recipes; a trajectory shares one model, so "
                               "one task: drop task-labels or use mode = 'recipes'")
        if self.mode == "recipes":
            # A trajectory setting away from its default in recipes mode would be
            # silently ignored: the user meant another run than the one they'd get.
            changed = [name for name in TRAJECTORY_FIELDS
                       if getattr(self, name) != getattr(FederationConfig, name)]
            if changed:
                keys = ", ".join(n.replace("_", "-") for n in changed)
                verb = "applies" if len(changed) == 1 else "apply"
                raise FedseedError(f"federation config: {keys} {verb} only to mode "
                                   "'trajectory'; set mode = 'trajectory' or drop it")
        else:
            # Each trajectory method reads its own settings; the other's are refused.
            other = ZO_FIELDS if self.trajectory_method == "first-order" else FO_FIELDS
            changed = [name for name in other
                       if getattr(self, name) != getattr(FederationConfig, name)]
            if changed:
                keys = ", ".join(n.replace("_", "-") for n in changed)
                wanted = "zeroth-order" if self.trajectory_method == "first-order" \
                    else "first-order"
                raise FedseedError(f"federation config: {keys} only apply to "
                                   f"trajectory-method {wanted}; drop them or set "
                                   f"trajectory-method = '{wanted}'")

    def privacy_settings(self) -> PrivacySettings | None:
        """The ``dp-*`` keys as :class:`~fedseed.privacy.settings.PrivacySettings`
        (None when ``dp`` is off)."""
        if self.dp == "off":
            return None
        from fedseed.privacy.settings import PrivacySettings

        return PrivacySettings(mode=self.dp,  # type: ignore[arg-type]
                               target_epsilon=self.dp_epsilon or None,
                               noise_multiplier=self.dp_noise_multiplier,
                               delta=self.dp_delta, clip=self.dp_clip,
                               loss_bound=self.dp_loss_bound,
                               curve_points=self.dp_curve_points)

    @classmethod
    def from_run_config(cls, run_config: Mapping[str, Any]) -> FederationConfig:
        """Read ``[tool.flwr.app.config]`` keys (dash-separated); unknown keys are refused."""
        known = {f.name.replace("_", "-"): f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in run_config.items():
            if key not in known:
                raise FedseedError(f"run config: unknown key '{key}' (known: "
                                   f"{', '.join(sorted(known))})")
            values[known[key].name] = _coerce(key, value, str(known[key].type))
        return cls(**values)


#: Settings that only the zeroth-order / the first-order trajectory method reads.
ZO_FIELDS = ("pool_size", "zo_steps", "zo_lr", "zo_epsilon", "seeds_per_step",
             "sampling", "server_lr")
FO_FIELDS = ("projection_k", "projection_lr", "projection_dtype", "projection_basis")
#: Settings that only a private federation (``dp`` central or local) reads.
DP_FIELDS = ("dp_epsilon", "dp_delta", "dp_noise_multiplier", "dp_clip", "dp_loss_bound",
             "dp_curve_points")
#: Settings that only mode ``trajectory`` reads.
TRAJECTORY_FIELDS = (*ZO_FIELDS, "trajectory_method", *FO_FIELDS)

_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def _coerce(key: str, value: Any, kind: str) -> Any:
    """A run-config value as its field's type; anything ambiguous is refused."""
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE | _FALSE:
            return text in _TRUE
    elif kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
    elif kind == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    else:
        return str(value)
    raise FedseedError(f"run config: {key} = {value!r} is not a valid {kind}")
