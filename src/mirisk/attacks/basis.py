"""Low-dimensional code spaces the black-box attacks search in.

A DCT basis needs no data (low spatial frequencies; Guo, Frank & Weinberger, UAI 2019);
a PCA basis of public photos of *other* people is an auxiliary prior of the kind
Fredrikson et al. (CCS 2015) call AuxTerm; the latent space of a face generator learnt
from other people is the prior of GMI (Zhang et al., CVPR 2020) and BREP-MI (Kahla et al.,
CVPR 2022), searched here through queries alone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from scipy.fft import idctn
from sklearn.decomposition import PCA

from mirisk.errors import MiriskError
from mirisk.priors.store import FacePrior

DECODE_BATCH = 256


class CodeSpace(Protocol):
    """What the black-box attacks search: codes of ``dimensions`` numbers, decoded to images."""

    name: str

    @property
    def dimensions(self) -> int: ...

    def decode(self, codes: torch.Tensor, input_shape: tuple[int, ...],
               value_range: tuple[float, float]) -> torch.Tensor: ...


@dataclass(frozen=True)
class ImageBasis:
    """Images as ``mean + z @ components`` for a code ``z`` of ``len(components)`` numbers."""

    mean: torch.Tensor
    components: torch.Tensor
    name: str

    @property
    def dimensions(self) -> int:
        return len(self.components)

    def decode(
        self, codes: torch.Tensor, input_shape: tuple[int, ...], value_range: tuple[float, float]
    ) -> torch.Tensor:
        """Images ``[N, *input_shape]`` for codes ``[N, len(components)]``, clipped to ``value_range``."""
        low, high = value_range
        return (self.mean + codes @ self.components).view(-1, *input_shape).clamp(low, high)


def dct_basis(input_shape: tuple[int, int, int], size: tuple[int, int] = (12, 10), level: float = 0.5) -> ImageBasis:
    """The ``size`` lowest 2-D DCT frequencies of each channel, around a flat grey ``level``.
    A code of 1 moves an image by one orthonormal unit, so codes are on a common scale."""
    channels, height, width = input_shape
    rows, columns = min(size[0], height), min(size[1], width)
    count = channels * rows * columns
    coefficients = np.zeros((count, channels, height, width))
    index = np.arange(count)
    channel, rest = np.divmod(index, rows * columns)
    coefficients[index, channel, rest // columns, rest % columns] = 1.0
    components = idctn(coefficients, axes=(2, 3), norm="ortho").reshape(count, -1)
    mean = torch.full((channels * height * width,), level)
    return ImageBasis(mean, torch.as_tensor(components, dtype=torch.float32) * 10.0, f"dct {rows}x{columns}")


def basis_for(basis: CodeSpace | None, input_shape: tuple[int, ...]) -> CodeSpace:
    """``basis``, or the data-free DCT basis of ``input_shape`` when none is given."""
    if basis is not None:
        return basis
    if len(input_shape) != 3:
        raise MiriskError(f"the DCT basis needs images of shape (channels, height, width), got {tuple(input_shape)}")
    channels, height, width = input_shape
    return dct_basis((channels, height, width))


def public_face_basis(public_images: np.ndarray, n_components: int = 60, seed: int = 0) -> ImageBasis:
    """Principal components of public faces (people *not* in the target's training set),
    scaled by their standard deviation so a code of 1 is one typical face variation."""
    flat = public_images.reshape(len(public_images), -1)
    pca = PCA(n_components=min(n_components, len(flat) - 1), random_state=seed).fit(flat)
    scale = np.sqrt(pca.explained_variance_)[:, None]
    return ImageBasis(
        torch.as_tensor(pca.mean_, dtype=torch.float32),
        torch.as_tensor(pca.components_ * scale, dtype=torch.float32),
        f"pca of {len(flat)} public faces, {pca.n_components_} components",
    )


@dataclass(frozen=True)
class LatentBasis:
    """Images as ``G(z)`` for a face prior's generator, ``z`` clipped to ``clip`` per
    coordinate (the prior's support, as GMI clamps it). Decoding is a forward pass only:
    the attacks that search here never differentiate the model."""

    prior: FacePrior
    clip: float = 2.0

    @property
    def name(self) -> str:
        return f"latent space of a face prior learnt from {len(self.prior.people)} public people"

    @property
    def dimensions(self) -> int:
        return self.prior.shape.latent_dim

    def decode(
        self, codes: torch.Tensor, input_shape: tuple[int, ...], value_range: tuple[float, float]
    ) -> torch.Tensor:
        """Images ``[N, *input_shape]`` for latents ``[N, latent_dim]``, in ``value_range``."""
        shape = (self.prior.shape.channels, self.prior.shape.height, self.prior.shape.width)
        if shape != tuple(input_shape):
            raise MiriskError(f"the prior makes {shape} images; the model expects {tuple(input_shape)}")
        low, high = value_range
        with torch.no_grad():
            images = torch.cat([self.prior.generator(part.clamp(-self.clip, self.clip))
                                for part in codes.detach().split(DECODE_BATCH)])
        return low + (high - low) * images
