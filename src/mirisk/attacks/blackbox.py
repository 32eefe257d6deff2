"""Score-based black-box model inversion: MI-Face's objective, gradients estimated from queries.

Gradient estimate: natural evolution strategies with antithetic Gaussian samples (Wierstra
et al., JMLR 2014), the estimator Ilyas, Engstrom, Athalye & Lin (ICML 2018) used for
query-limited black-box attacks, taken in a low-dimensional image basis: the lowest
frequencies of the 2-D DCT (no data needed; Guo, Frank & Weinberger, UAI 2019), or the
principal components of public faces of *other* people (an auxiliary prior, the role of
Fredrikson et al.'s AuxTerm). Ascent on the log of the returned score with Adam.

Threat model: scores through an oracle (full, top-k, rounded or noisy, as its output policy
allows). The attacker sends images and sees only the policy's output; it knows the label
of the person to reconstruct and, optionally, public photos of other people; every image
sent counts against the oracle's query budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from scipy.fft import idctn
from sklearn.decomposition import PCA

from mirisk.access.oracle import Oracle
from mirisk.attacks.result import AttackResult, as_target_labels
from mirisk.errors import MiriskError
from mirisk.runtime import prepare_torch
from mirisk.threats import ThreatModel


@dataclass(frozen=True)
class ImageBasis:
    """Images as ``mean + z @ components`` for a code ``z`` of ``len(components)`` numbers."""

    mean: torch.Tensor
    components: torch.Tensor
    name: str

    def decode(self, codes: torch.Tensor, input_shape: tuple[int, ...]) -> torch.Tensor:
        return (self.mean + codes @ self.components).view(-1, *input_shape)


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
class ScoreBlackBox:
    """NES-estimated ascent on ``log max(score_label, floor)``; every target of the batch
    in one oracle call per step (``2 * samples`` queries per target per step)."""

    iterations: int = 300
    samples: int = 20
    sigma: float = 0.3
    learning_rate: float = 0.1
    floor: float = 1e-6

    def __post_init__(self) -> None:
        if self.iterations < 1 or self.samples < 1 or self.sigma <= 0 or self.learning_rate <= 0:
            raise MiriskError("the black-box attack needs iterations, samples, sigma and learning_rate > 0")

    def run(
        self,
        oracle: Oracle,
        target_labels: Sequence[int] | torch.Tensor,
        basis: ImageBasis,
        seed: int = 0,
        progress: Callable[[int], None] | None = None,
    ) -> AttackResult:
        """Reconstruct one image per label; stops cleanly, keeping its best, when the budget runs out."""
        prepare_torch()
        labels = as_target_labels(target_labels, oracle.n_classes)
        generator = torch.Generator().manual_seed(seed)
        started, queries_at_start = time.perf_counter(), oracle.queries_used
        targets, dimensions = len(labels), len(basis.components)
        per_step = targets * 2 * self.samples
        low, high = oracle.value_range

        code = torch.zeros(targets, dimensions)
        code.requires_grad_(True)
        optimiser = torch.optim.Adam([code], lr=self.learning_rate, maximize=True)
        best_code = code.detach().clone()
        best_score = torch.full((targets,), -1.0)
        columns = labels.repeat_interleave(2 * self.samples)
        steps_taken, stop = 0, "max-iterations"

        for step in range(self.iterations):
            remaining = oracle.remaining
            if remaining is not None and remaining < per_step:
                stop = "budget"
                break
            noise = torch.randn(targets, self.samples, dimensions, generator=generator)
            directions = torch.cat([noise, -noise], dim=1)
            candidates = code.detach()[:, None, :] + self.sigma * directions
            images = basis.decode(candidates.reshape(-1, dimensions), oracle.input_shape).clamp(low, high)
            scores = oracle.query(images)[torch.arange(len(images)), columns].view(targets, 2 * self.samples)
            log_scores = scores.clamp_min(self.floor).log()
            gradient = ((log_scores - log_scores.mean(1, keepdim=True))[..., None] * directions).mean(1) / self.sigma
            top_score, top_index = scores.max(dim=1)
            better = top_score > best_score
            best_score = torch.where(better, top_score, best_score)
            best_code[better] = candidates[better, top_index[better]]
            code.grad = gradient
            optimiser.step()
            steps_taken = step + 1
            if progress is not None:
                progress(steps_taken)

        reconstructions = basis.decode(best_code, oracle.input_shape).clamp(low, high)
        settings = {**asdict(self), "basis": basis.name, "policy": oracle.policy.spec, "budget": oracle.budget}
        return AttackResult(
            attack="blackbox-scores",
            threat_model=ThreatModel(
                access=oracle.policy.access,
                knowledge=("output of the oracle's policy", "the target person's label", f"image basis: {basis.name}"),
                query_budget=oracle.budget,
            ),
            reconstructions=reconstructions,
            target_labels=labels,
            final_cost=1.0 - best_score.clamp_min(0.0),
            iterations=torch.full((targets,), steps_taken, dtype=torch.int64),
            stop_reasons=[stop] * targets,
            seconds=time.perf_counter() - started,
            settings=settings,
            queries_used=oracle.queries_used - queries_at_start,
        )
