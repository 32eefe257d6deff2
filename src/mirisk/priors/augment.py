"""Differentiable augmentation for data-efficient GAN training (DiffAugment: Zhao, Liu, Lin,
Zhu & Han, NeurIPS 2020): the same random brightness, contrast, translation and cutout are
applied to real and generated images before the discriminator, so it cannot memorise a
small public set. Randomness comes from the generator passed in."""

from __future__ import annotations

import torch


def diff_augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return _cutout(_translate(_colour(images, generator), generator), generator)


def _uniform(n: int, generator: torch.Generator, low: float, high: float) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, 1, 1, 1, generator=generator)


def _colour(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    n = len(images)
    images = images + _uniform(n, generator, -0.5, 0.5) * 0.5
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    return (images - mean) * _uniform(n, generator, 0.5, 1.5) + mean


def _translate(images: torch.Tensor, generator: torch.Generator, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its size, filling with zeros (a padded gather)."""
    n, _, h, w = images.shape
    dy, dx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    shift_y = torch.randint(-dy, dy + 1, (n, 1, 1), generator=generator)
    shift_x = torch.randint(-dx, dx + 1, (n, 1, 1), generator=generator)
    rows = (torch.arange(h)[None, :, None] + shift_y).clamp(-1, h)  # -1 and h index the zero padding
    cols = (torch.arange(w)[None, None, :] + shift_x).clamp(-1, w)
    padded = torch.nn.functional.pad(images, (1, 1, 1, 1))
    batch = torch.arange(n)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows + 1, cols + 1].permute(0, 3, 1, 2)


def _cutout(images: torch.Tensor, generator: torch.Generator, ratio: float = 0.5) -> torch.Tensor:
    """Zero one random rectangle of ``ratio`` of each side per image."""
    n, _, h, w = images.shape
    size_h, size_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = torch.randint(0, h + (1 - size_h % 2), (n, 1, 1), generator=generator) - size_h // 2
    left = torch.randint(0, w + (1 - size_w % 2), (n, 1, 1), generator=generator) - size_w // 2
    rows, cols = torch.arange(h)[None, :, None], torch.arange(w)[None, None, :]
    inside = (rows >= top) & (rows < top + size_h) & (cols >= left) & (cols < left + size_w)
    return images * (~inside)[:, None].to(images.dtype)
