"""Built-in small torch architectures: an MLP and a CNN."""

from __future__ import annotations

import torch
from torch import nn

from fedseed.recipe.architecture import CNNConfig, MLPConfig

_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


class MLP(nn.Module):
    """Flatten, then ``Linear -> activation -> dropout`` per hidden width, then a head."""

    def __init__(self, config: MLPConfig, num_labels: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = config.in_features
        for hidden in config.hidden:
            layers += [nn.Linear(width, hidden), _ACTIVATIONS[config.activation]()]
            if config.dropout > 0:
                layers.append(nn.Dropout(config.dropout))
            width = hidden
        layers.append(nn.Linear(width, num_labels))
        self.net = nn.Sequential(*layers)
        self.in_features = config.in_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits of shape ``(batch, num_labels)``."""
        return self.net(features)


class CNN(nn.Module):
    """Conv blocks (conv, ReLU, 2x2 max-pool), then ``Linear -> ReLU -> Linear``."""

    def __init__(self, config: CNNConfig, num_labels: int) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        channels, size = config.in_channels, config.image_size
        for out in config.channels:
            blocks += [
                nn.Conv2d(channels, out, config.kernel_size, padding=config.kernel_size // 2),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
            channels, size = out, size // 2
        self.features = nn.Sequential(*blocks)
        head: list[nn.Module] = [nn.Flatten(), nn.Linear(channels * size * size, config.hidden),
                                 nn.ReLU()]
        if config.dropout > 0:
            head.append(nn.Dropout(config.dropout))
        head.append(nn.Linear(config.hidden, num_labels))
        self.head = nn.Sequential(*head)
        self.input_shape = (config.in_channels, config.image_size, config.image_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits of shape ``(batch, num_labels)`` from ``(batch, C, H, W)`` images."""
        return self.head(self.features(images))
