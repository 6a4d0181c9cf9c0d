"""Built-in small torch architectures: an MLP, a CNN and a hashed n-gram bag."""

from __future__ import annotations

import torch
from torch import nn

from fedseed.recipe.architecture import CNNConfig, MLPConfig, NgramBagConfig

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


class NgramBag(nn.Module):
    """fastText-style classifier (Joulin et al., 2017, "Bag of Tricks for Efficient Text
    Classification"): the mean of the embeddings of a text's hashed n-gram ids
    (padding id 0 excluded), then dropout and a linear head.

    The embedding starts uniform in ``±1/dim`` (fastText's initialisation) with a zero
    padding row; the head starts as ``nn.Linear`` does.
    """

    def __init__(self, config: NgramBagConfig, num_embeddings: int, num_labels: int) -> None:
        super().__init__()
        self.embedding = nn.EmbeddingBag(num_embeddings, config.dim, mode="mean", padding_idx=0)
        if self.embedding.weight.device.type != "meta":
            with torch.no_grad():
                self.embedding.weight.uniform_(-1.0 / config.dim, 1.0 / config.dim)
                self.embedding.weight[0].zero_()
        self.dropout = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()
        self.head = nn.Linear(config.dim, num_labels)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Logits of shape ``(batch, num_labels)`` from padded ``(batch, tokens)`` ids."""
        return self.head(self.dropout(self.embedding(input_ids)))
