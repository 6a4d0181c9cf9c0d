"""How a recipe trains: initialisation, optimizer, schedule, budget, data split."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    Discriminator,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from fedseed.recipe._base import (
    MAX_STEPS,
    Digest,
    LearningRate,
    PositiveSteps,
    Probability,
    Seed,
    Steps,
    StrictModel,
    WeightDecay,
)

Beta = Annotated[float, Field(ge=0.0, lt=1.0)]
AdamEps = Annotated[float, Field(gt=0.0, le=1e-2)]


class Init(StrictModel):
    """Initialisation: ``seed`` drives weights, batch order and dropout.

    ``base`` optionally names a pretrained base checkpoint by digest (a safetensors
    file, or a local Hugging Face model folder; see docs/bases.md): its tensors replace
    the random ones of the same name. Absent, it is left out of the canonical bytes, so
    recipes without a base keep their digests.
    """

    seed: Seed = 0
    scheme: Literal["default"] = "default"
    base: Digest | None = None

    @model_serializer(mode="wrap")
    def _omit_absent_base(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("base") is None:
            data.pop("base", None)
        return data


class AdamW(StrictModel):
    """AdamW (Loshchilov & Hutter, 2019): Adam with decoupled weight decay."""

    name: Literal["adamw"] = "adamw"
    lr: LearningRate = 1e-3
    betas: tuple[Beta, Beta] = (0.9, 0.999)
    eps: AdamEps = 1e-8
    weight_decay: WeightDecay = 0.01


class Adam(StrictModel):
    """Adam (Kingma & Ba, 2015) with L2 weight decay folded into the gradient."""

    name: Literal["adam"] = "adam"
    lr: LearningRate = 1e-3
    betas: tuple[Beta, Beta] = (0.9, 0.999)
    eps: AdamEps = 1e-8
    weight_decay: WeightDecay = 0.0


class SGD(StrictModel):
    """Stochastic gradient descent with optional (Nesterov) momentum."""

    name: Literal["sgd"] = "sgd"
    lr: LearningRate = 0.1
    momentum: Beta = 0.0
    nesterov: bool = False
    weight_decay: WeightDecay = 0.0

    @model_validator(mode="after")
    def _nesterov(self) -> SGD:
        if self.nesterov and self.momentum == 0.0:
            raise ValueError("nesterov requires momentum > 0")
        return self


Optimizer = Annotated[AdamW | Adam | SGD, Discriminator("name")]
"""Tagged union of the supported optimizers, discriminated by ``name``."""


class Schedule(StrictModel):
    """Learning-rate schedule: linear warmup, then constant, linear or cosine decay.

    The multiplier rises linearly from ``1 / (warmup_steps + 1)`` to 1 over
    ``warmup_steps`` and then decays to ``min_lr_ratio`` at ``budget.max_steps``.
    """

    name: Literal["constant", "linear", "cosine"] = "constant"
    warmup_steps: Steps = 0
    min_lr_ratio: Probability = 0.0


class EarlyStopping(StrictModel):
    """Stop when the validation metric has not improved for ``patience`` evaluations.

    The weights of the best evaluation are restored before the model is saved.
    """

    patience: Annotated[int, Field(ge=1, le=1000)] = 5
    min_delta: Annotated[float, Field(ge=0.0, le=1e6)] = 0.0


class Budget(StrictModel):
    """How much training a recipe may do, and how often it looks at validation."""

    max_steps: PositiveSteps
    batch_size: Annotated[int, Field(ge=1, le=65_536)] = 32
    grad_clip: Annotated[float, Field(gt=0.0, le=1e6)] | None = 1.0
    eval_every: PositiveSteps = 50
    early_stopping: EarlyStopping | None = None

    @model_validator(mode="after")
    def _eval(self) -> Budget:
        if self.eval_every > self.max_steps:
            raise ValueError(
                f"eval_every {self.eval_every} exceeds max_steps {self.max_steps}"
            )
        return self


class Split(StrictModel):
    """Deterministic train/validation/test split of a device's local data."""

    validation_fraction: Annotated[float, Field(gt=0.0, le=0.5)] = 0.15
    test_fraction: Annotated[float, Field(ge=0.0, le=0.5)] = 0.15
    seed: Seed = 0


__all__ = [
    "MAX_STEPS",
    "SGD",
    "Adam",
    "AdamW",
    "Budget",
    "EarlyStopping",
    "Init",
    "Optimizer",
    "Schedule",
    "Split",
]
