"""Inversion by a trained decoder: learn to map a segmentation model's outputs back to the
input scan, then apply it to the outputs of patients whose scans the attacker never saw.

Subbanna, Wilms, Tuladhar & Forkert, "An Analysis of the Vulnerability of Two Common Deep
Learning-Based Medical Image Segmentation Techniques to Model Inversion Attacks", Sensors
2021, 21(11):3874.

Threat model: black-box. The attacker holds the target model's outputs for the private
patients (e.g. segmentations shared with a collaborator), can query the model with scans
of its own from the same population (the "decoder" subjects), and never sees a private
scan or the model's weights. What the outputs reveal is set by the served output type:
per-pixel probabilities (``probs``), raw scores (``logits``) or hard label maps
(``labels``, output restriction).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mirisk.errors import MiriskError
from mirisk.metrics.image import ssim
from mirisk.models.segmentation import EncoderDecoder, SegmentationTarget
from mirisk.models.training import TrainingConfig, train_classifier
from mirisk.runtime import keeps_caller_generators, prepare_torch

OUTPUT_TYPES = ("probs", "logits", "labels")
PROBABILITY_FLOOR = 1e-30


class SegmentationOracle:
    """Black-box access to a segmenter: answers scans with its outputs of one type, counting
    every scan as one query."""

    def __init__(self, target: SegmentationTarget, output_type: str = "probs") -> None:
        if output_type not in OUTPUT_TYPES:
            raise MiriskError(f"unknown output type {output_type!r}; choose one of {', '.join(OUTPUT_TYPES)}")
        self._target = target
        self.output_type = output_type
        self.n_classes = len(target.class_names)
        self.queries_used = 0

    def query(self, images: np.ndarray) -> np.ndarray:
        """Outputs [N, n_classes, H, W]: probabilities, logits, or one-hot label maps."""
        self.queries_used += len(images)
        logits = self._target.logits(images)
        if self.output_type == "logits":
            return logits.numpy()
        if self.output_type == "probs":
            return torch.softmax(logits, dim=1).numpy()
        return nn.functional.one_hot(logits.argmax(dim=1), self.n_classes).permute(0, 3, 1, 2).float().numpy()


@dataclass(frozen=True)
class DecoderSettings:
    """The decoder network (a U-Net over the output channels) and its training."""

    width: int = 8
    depth: int = 3
    epochs: int = 200
    learning_rate: float = 2e-3
    batch_size: int = 8


def reconstruction_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error plus (1 - SSIM): pixel fidelity and the structure that
    re-identification and the SSIM score look at."""
    return nn.functional.mse_loss(predicted, target) + 1 - ssim(predicted, target).mean()


class DecoderInversion:
    """Train a decoder on (output, scan) pairs of the attacker's own subjects, then invert
    the private patients' outputs. See the module docstring for the paper and threat model."""

    name = "decoder"

    def __init__(self, settings: DecoderSettings = DecoderSettings(), seed: int = 0) -> None:
        self.settings = settings
        self.seed = seed
        self._decoder: nn.Module | None = None
        self._output_type = "probs"
        self._scale: np.ndarray | None = None

    def _features(self, outputs: np.ndarray) -> np.ndarray:
        """What the decoder reads. Probabilities are taken as log-probabilities: they are the
        logits up to a per-pixel constant, so a saturated 0.9999 still carries the margin.
        Each channel is then scaled by its range on the attacker's own data."""
        if self._output_type == "probs":
            outputs = np.log(np.clip(outputs, PROBABILITY_FLOOR, None))
        if self._scale is None:
            self._scale = np.maximum(np.abs(outputs).max(axis=(0, 2, 3), keepdims=True), 1e-6)
        return outputs / self._scale

    @keeps_caller_generators
    def fit(self, oracle: SegmentationOracle, images: np.ndarray,
            progress: Callable[[int], None] | None = None) -> DecoderInversion:
        """Query the model with the attacker's scans and learn outputs -> scans."""
        prepare_torch(self.seed)
        self._output_type, self._scale = oracle.output_type, None
        features = self._features(oracle.query(images))
        decoder = nn.Sequential(
            EncoderDecoder(oracle.n_classes, images.shape[1], self.settings.width, self.settings.depth, skips=True),
            nn.Sigmoid(),
        )
        config = TrainingConfig(epochs=self.settings.epochs, learning_rate=self.settings.learning_rate,
                                batch_size=self.settings.batch_size, seed=self.seed)
        self._decoder = train_classifier(decoder, features, images.astype(np.float32), config,
                                         progress=progress, loss_fn=reconstruction_loss)
        return self

    @torch.no_grad()
    def reconstruct(self, outputs: np.ndarray) -> np.ndarray:
        """Scans [N, C, H, W] in [0, 1] reconstructed from model outputs."""
        if self._decoder is None:
            raise MiriskError("train the decoder (fit) before reconstructing")
        x = torch.as_tensor(self._features(outputs), dtype=torch.float32)
        return torch.cat([self._decoder(chunk) for chunk in x.split(32)]).numpy()
