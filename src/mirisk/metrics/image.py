"""Image similarity, batched: SSIM and PSNR per image pair, and similarity matrices.

SSIM is Wang, Bovik, Sheikh & Simoncelli (IEEE TIP 2004) with a Gaussian window (11,
sigma 1.5), averaged over fully covered pixels: the settings of scikit-image's
``structural_similarity(gaussian_weights=True, use_sample_covariance=False)``, which the
tests check it against. It is computed from local moments with two matrix products per
image, so a whole similarity matrix costs one filtered product per pair."""

from __future__ import annotations

import torch

WINDOW, SIGMA = 11, 1.5


def _window_operator(length: int) -> torch.Tensor:
    """``[length - WINDOW + 1, length]`` matrix applying the normalised Gaussian window at
    every position where it fits inside the image."""
    offsets = torch.arange(WINDOW, dtype=torch.float32) - (WINDOW - 1) / 2
    kernel = torch.exp(-(offsets**2) / (2 * SIGMA**2))
    kernel = kernel / kernel.sum()
    operator = torch.zeros(length - WINDOW + 1, length)
    for shift in range(WINDOW):
        operator.diagonal(shift).fill_(float(kernel[shift]))
    return operator


class _LocalMoments:
    """Gaussian-weighted local means and variances of a stack of grey images ``[N, H, W]``."""

    def __init__(self, images: torch.Tensor, vertical: torch.Tensor, horizontal: torch.Tensor) -> None:
        self.images = images
        self.blur = lambda x: vertical @ x @ horizontal
        self.mean = self.blur(images)
        self.variance = self.blur(images * images) - self.mean**2


def _grey(images: torch.Tensor) -> torch.Tensor:
    return images.float().mean(1)


def _ssim_map_from_moments(cross: torch.Tensor, mean_a: torch.Tensor, mean_b: torch.Tensor, var_a: torch.Tensor,
                           var_b: torch.Tensor, data_range: float) -> torch.Tensor:
    """The SSIM map from local moments; ``cross`` (a fresh tensor) is overwritten, so the
    broadcast pairs cost as few full-size temporaries as possible."""
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mean_ab = mean_a * mean_b
    numerator = cross.sub_(mean_ab).mul_(2).add_(c2).mul_(mean_ab.mul_(2).add_(c1))
    denominator = (mean_a**2 + mean_b**2).add_(c1).mul_((var_a + var_b).add_(c2))
    return numerator.div_(denominator)


def _moments(a: torch.Tensor, b: torch.Tensor) -> tuple[_LocalMoments, _LocalMoments]:
    a, b = _grey(a), _grey(b)
    vertical, horizontal = _window_operator(a.shape[-2]), _window_operator(a.shape[-1]).T
    return _LocalMoments(a, vertical, horizontal), _LocalMoments(b, vertical, horizontal)


def ssim(a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """SSIM of each pair ``a[i]``, ``b[i]`` (``[N, C, H, W]``; colour compared on its grey mean)."""
    return ssim_map(a, b, data_range).mean(dim=(-2, -1))


def ssim_map(a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Local SSIM of each pair at every fully covered pixel: ``[N, H - 10, W - 10]`` (the
    window's half-width, 5 pixels, is cut from each border)."""
    ma, mb = _moments(a, b)
    cross = ma.blur(ma.images * mb.images)
    return _ssim_map_from_moments(cross, ma.mean, mb.mean, ma.variance, mb.variance, data_range)


def masked_ssim(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """SSIM averaged over the pixels where ``mask`` [N, H, W] is true (e.g. the brain)."""
    half = WINDOW // 2
    inner = mask[:, half:-half, half:-half].float()
    return (ssim_map(a, b, data_range) * inner).sum(dim=(-2, -1)) / inner.sum(dim=(-2, -1)).clamp_min(1.0)


def ssim_matrix(a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0, chunk: int = 4) -> torch.Tensor:
    """SSIM between every ``a[i]`` and every ``b[j]`` -> ``[len(a), len(b)]``, ``chunk``
    columns at a time (small chunks keep the pairwise maps in cache: 3x faster than 64)."""
    ma, mb = _moments(a, b)
    rows = []
    for start in range(0, len(b), chunk):
        part = slice(start, start + chunk)
        cross = ma.blur(ma.images[:, None] * mb.images[None, part])
        rows.append(_ssim_map_from_moments(
            cross, ma.mean[:, None], mb.mean[None, part], ma.variance[:, None], mb.variance[None, part],
            data_range,
        ).mean(dim=(-2, -1)))
    return torch.cat(rows, dim=1)


def psnr(a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB of each pair ``a[i]``, ``b[i]``."""
    mse = ((a.float() - b.float()) ** 2).flatten(1).mean(1)
    return 10 * torch.log10(data_range**2 / mse.clamp_min(1e-12))


def correlation_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of pixels between every ``a[i]`` and every ``b[j]`` -> ``[len(a), len(b)]``."""

    def standardise(x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1).double()
        flat = flat - flat.mean(1, keepdim=True)
        return flat / flat.norm(dim=1, keepdim=True).clamp_min(1e-12)

    return (standardise(a) @ standardise(b).T).float()
