"""A DCGAN-size face generator and its discriminator for a prior learnt from public faces.

The generator follows DCGAN (Radford et al., ICLR 2016) with nearest-neighbour upsampling;
the discriminator uses spectral normalisation (Miyato et al., ICLR 2018) and is trained with
the hinge loss (Lim & Ye 2017). Both work at half the image's resolution; the generator's
output is upsampled bilinearly to the full image, so the prior costs a quarter of the
pixels on the reference CPU. This is the prior GMI (Zhang et al., CVPR 2020) inverts in.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from mirisk.errors import MiriskError


@dataclass(frozen=True)
class PriorShape:
    """The image a prior makes (``channels, height, width``), its latent size and widths."""

    channels: int
    height: int
    width: int
    latent_dim: int = 128
    generator_width: int = 32
    discriminator_width: int = 32

    def __post_init__(self) -> None:
        if self.channels not in (1, 3) or min(self.height, self.width) < 32:
            raise MiriskError(f"a face prior learns grey or colour images of at least 32 x 32 pixels; these are "
                              f"{self.channels} x {self.height} x {self.width}")

    @property
    def base(self) -> tuple[int, int]:
        """The generator's first feature map: the half-resolution image divided by 8."""
        return _ceil_div(self.height // 2, 8), _ceil_div(self.width // 2, 8)

    @property
    def half(self) -> tuple[int, int]:
        return self.height // 2, self.width // 2

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _up_block(inputs: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(inputs, outputs, 3, padding=1),
                         nn.BatchNorm2d(outputs), nn.ReLU(inplace=True))


class Generator(nn.Module):
    """Latent ``[N, latent_dim]`` -> image ``[N, C, H, W]`` in [0, 1]."""

    def __init__(self, shape: PriorShape) -> None:
        super().__init__()
        self.shape = shape
        width, (base_h, base_w) = shape.generator_width, shape.base
        self.project = nn.Sequential(nn.Linear(shape.latent_dim, 4 * width * base_h * base_w),
                                     nn.Unflatten(1, (4 * width, base_h, base_w)), nn.BatchNorm2d(4 * width),
                                     nn.ReLU(inplace=True))
        self.body = nn.Sequential(_up_block(4 * width, 2 * width), _up_block(2 * width, width),
                                  _up_block(width, width // 2), nn.Conv2d(width // 2, shape.channels, 3, padding=1),
                                  nn.Sigmoid())

    FEATURE_LAYERS = (1, 2)

    def features(self, latent: torch.Tensor, layer: int) -> torch.Tensor:
        """The generator's ``layer``-th feature map for ``latent`` (1: after the projection,
        2: after the first upsampling block): the intermediate space IF-GMI searches."""
        if layer not in self.FEATURE_LAYERS:
            raise ValueError(f"feature layer must be one of {self.FEATURE_LAYERS}, got {layer}")
        code = self.project(latent)
        return code if layer == 1 else self.body[0](code)

    def half_from_features(self, features: torch.Tensor, layer: int) -> torch.Tensor:
        """The half-resolution image decoded from the ``layer``-th feature map."""
        half_h, half_w = self.shape.half
        return self.body[layer - 1:](features)[..., :half_h, :half_w]

    def from_features(self, features: torch.Tensor, layer: int) -> torch.Tensor:
        """The full-size image decoded from the ``layer``-th feature map."""
        return self.upsample(self.half_from_features(features, layer))

    def forward_half(self, latent: torch.Tensor) -> torch.Tensor:
        """The image at half resolution, as the discriminator sees it."""
        return self.half_from_features(self.project(latent), 1)

    def upsample(self, half: torch.Tensor) -> torch.Tensor:
        """A half-resolution image at the full image size."""
        return nn.functional.interpolate(half, size=(self.shape.height, self.shape.width), mode="bilinear",
                                         align_corners=False)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.upsample(self.forward_half(latent))


class Discriminator(nn.Module):
    """Half-resolution image -> one realness score per image (spectral-normalised convolutions)."""

    def __init__(self, shape: PriorShape) -> None:
        super().__init__()
        width = shape.discriminator_width
        layers: list[nn.Module] = []
        channels = shape.channels
        for out in (width // 2, width, 2 * width, 4 * width):
            layers += [spectral_norm(nn.Conv2d(channels, out, 4, stride=2, padding=1)), nn.LeakyReLU(0.2, inplace=True)]
            channels = out
        self.features = nn.Sequential(*layers)
        self.score = spectral_norm(nn.Linear(channels, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.score(self.features(images).sum(dim=(2, 3))).squeeze(1)
