"""Image-to-image networks: the segmentation targets and the attacker's inversion decoder.

``unet``: a U-Net (Ronneberger, Fischer & Brox, MICCAI 2015), an encoder-decoder whose
decoder also receives each encoder level's features (skip connections). ``segnet``: a
SegNet-like encoder-decoder (Badrinarayanan, Kendall & Cipolla, TPAMI 2017) without skip
connections, so everything passes through the bottleneck.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from mirisk.errors import MiriskError

ARCHITECTURES = ("unet", "segnet")


def _block(in_channels: int, out_channels: int, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]
    if dropout > 0:
        layers.append(nn.Dropout2d(dropout))
    return nn.Sequential(*layers)


class EncoderDecoder(nn.Module):
    """``depth`` levels of two 3x3 convolutions (each with batch norm and ReLU), halving the size and doubling the width
    (``width`` channels at the top); with ``skips`` the U-Net's concatenations."""

    def __init__(self, in_channels: int, out_channels: int, width: int = 8, depth: int = 3, skips: bool = True,
                 dropout: float = 0.0) -> None:
        super().__init__()
        widths = [width * 2**level for level in range(depth + 1)]
        self.skips = skips
        self.down = nn.ModuleList(
            [_block(in_channels if level == 0 else widths[level - 1], widths[level], dropout) for level in range(depth)]
        )
        self.bottom = _block(widths[depth - 1], widths[depth], dropout)
        self.up = nn.ModuleList(
            [nn.ConvTranspose2d(widths[level + 1], widths[level], 2, stride=2) for level in reversed(range(depth))]
        )
        self.merge = nn.ModuleList(
            [_block(widths[level] * (2 if skips else 1), widths[level], dropout) for level in reversed(range(depth))]
        )
        self.head = nn.Conv2d(widths[0], out_channels, 1)
        self.factor = 2**depth

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        features = []
        hidden = inputs
        for block in self.down:
            hidden = block(hidden)
            features.append(hidden)
            hidden = nn.functional.max_pool2d(hidden, 2)
        hidden = self.bottom(hidden)
        for upsample, merge, skip in zip(self.up, self.merge, reversed(features)):
            hidden = upsample(hidden)
            hidden = merge(torch.cat([hidden, skip], dim=1) if self.skips else hidden)
        return self.head(hidden)


def build_segmenter(architecture: str, in_channels: int, n_classes: int, width: int = 8, depth: int = 3,
                    dropout: float = 0.0) -> EncoderDecoder:
    if architecture not in ARCHITECTURES:
        raise MiriskError(f"unknown segmentation architecture {architecture!r}; choose one of {', '.join(ARCHITECTURES)}")
    return EncoderDecoder(in_channels, n_classes, width, depth, skips=architecture == "unet", dropout=dropout)


def check_divisible(shape: tuple[int, ...], factor: int) -> None:
    if any(size % factor for size in shape[-2:]):
        raise MiriskError(f"slices of {shape[-2]}x{shape[-1]} pixels: both sides must be divisible by {factor} "
                          "for this network depth")


@dataclass
class SegmentationTarget:
    """A trained segmenter and the facts an audit needs: architecture, classes, training
    settings (with the network's width, depth and dropout), Dice scores, and ``data``: where
    its scans came from and which subjects it was trained on. An imported network (any
    module mapping ``[N, C, H, W]`` to ``[N, classes, H, W]``) also records the channels it
    takes, what its file outputs (``logits``, or ``probs``: then :meth:`logits` gives
    log-probabilities), and the file's provenance."""

    module: nn.Module
    architecture: str
    class_names: tuple[str, ...]
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    input_channels: int | None = None
    outputs: str = "logits"
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def in_channels(self) -> int:
        if self.input_channels is not None:
            return self.input_channels
        return int(self.module.down[0][0].in_channels)

    @torch.no_grad()
    def logits(self, images: np.ndarray, batch_size: int = 32) -> torch.Tensor:
        x = torch.as_tensor(images, dtype=torch.float32)
        return torch.cat([self.module(chunk) for chunk in x.split(batch_size)])


def mean_dice(predicted: np.ndarray, truth: np.ndarray, n_classes: int) -> float:
    """Dice averaged over the foreground classes present in ``truth`` (class 0 is background)."""
    scores = []
    for label in range(1, n_classes):
        truth_mask, predicted_mask = truth == label, predicted == label
        if truth_mask.any():
            scores.append(2 * np.logical_and(truth_mask, predicted_mask).sum() / (truth_mask.sum() + predicted_mask.sum()))
    return float(np.mean(scores)) if scores else 1.0
