"""The three face-recogniser families of Fredrikson et al. (CCS 2015) and friends.

``softmax``: multinomial logistic regression; ``mlp``: one hidden layer of sigmoid units
(3,000 in the paper); ``cnn``: a small convolutional network, the non-linear family we use
in place of the paper's stacked denoising-autoencoder classifier; ``lenet``: the sigmoid
network of the federated gradient-leakage literature."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from mirisk.errors import MiriskError

Shape = tuple[int, int, int]


class SoftmaxRegression(nn.Module):
    def __init__(self, input_shape: Shape, n_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)  # on the input pixels
        self.linear = nn.Linear(math.prod(input_shape), n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(x.flatten(1)))


class SigmoidMLP(nn.Module):
    def __init__(self, input_shape: Shape, n_classes: int, hidden: int = 3000, dropout: float = 0.0) -> None:
        super().__init__()
        self.hidden = nn.Linear(math.prod(input_shape), hidden)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.dropout(torch.sigmoid(self.hidden(x.flatten(1)))))


class SmallCNN(nn.Module):
    def __init__(self, input_shape: Shape, n_classes: int, width: int = 8, dropout: float = 0.0) -> None:
        super().__init__()
        channels = input_shape[0]
        self.features = nn.Sequential(
            nn.Conv2d(channels, width, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 4 * width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d((4, 4)),
        )
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(4 * width * 16, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.features(x).flatten(1)))


class SigmoidLeNet(nn.Module):
    """The LeNet variant of Zhu et al.'s DLG paper (NeurIPS 2019): sigmoid convolutions with
    strides instead of pooling, then one linear layer; the usual target in gradient-leakage
    studies of federated learning."""

    def __init__(self, input_shape: Shape, n_classes: int, width: int = 12, dropout: float = 0.0) -> None:
        super().__init__()
        channels, height, columns = input_shape
        self.features = nn.Sequential(
            nn.Conv2d(channels, width, 5, stride=2, padding=2), nn.Sigmoid(),
            nn.Conv2d(width, width, 5, stride=2, padding=2), nn.Sigmoid(),
            nn.Conv2d(width, width, 5, stride=1, padding=2), nn.Sigmoid(),
        )
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(width * math.ceil(math.ceil(height / 2) / 2) * math.ceil(math.ceil(columns / 2) / 2),
                                    n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.features(x).flatten(1)))


ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "softmax": SoftmaxRegression,
    "mlp": SigmoidMLP,
    "cnn": SmallCNN,
    "lenet": SigmoidLeNet,
}


def build_model(architecture: str, input_shape: Shape, n_classes: int, **params: float) -> nn.Module:
    """Build an untrained model of a named family; unknown names are a clear error."""
    if architecture not in ARCHITECTURES:
        raise MiriskError(f"unknown architecture {architecture!r}; choose one of {', '.join(ARCHITECTURES)}")
    try:
        return ARCHITECTURES[architecture](tuple(input_shape), n_classes, **params)
    except TypeError as error:
        raise MiriskError(f"bad parameters {params} for architecture {architecture!r}: {error}") from None
