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

import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from mirisk.access.segmentation import SegmentationOracle
from mirisk.attacks.contract import Progress, attack_generator, trainer_seed
from mirisk.attacks.result import AttackResult
from mirisk.metrics.image import ssim
from mirisk.models.segmentation import EncoderDecoder
from mirisk.models.training import TrainingConfig, train_classifier
from mirisk.runtime import keeps_caller_generators, prepare_torch
from mirisk.threats import AccessLevel, ThreatModel

PROBABILITY_FLOOR = 1e-30
KNOWLEDGE = ("the model's outputs for the private patients", "queries with the attacker's own scans")


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


@dataclass(frozen=True)
class DecoderInversion:
    """Train a decoder on (output, scan) pairs of the attacker's own scans ``public``, then
    invert the private patients' outputs. See the module docstring for the paper and threat
    model."""

    name = "decoder"
    public: np.ndarray = field(compare=False, repr=False)
    settings: DecoderSettings = DecoderSettings()

    @keeps_caller_generators
    def run(self, oracle: SegmentationOracle, targets: np.ndarray, *, generator: torch.Generator | None = None,
            progress: Progress | None = None) -> AttackResult:
        """Scans ``[N, C, H, W]`` in [0, 1] reconstructed from the outputs ``targets`` the
        attacker holds (``target_labels`` is each one's index). The decoder's training is
        seeded from ``generator``'s seed; ``progress(epoch)`` is called each epoch. A decoder
        has no per-target cost, so ``final_cost`` is NaN; ``queries_used`` counts the
        attacker's own scans sent to fit it."""
        started, queries_at_start = time.perf_counter(), oracle.queries_used
        seed = trainer_seed(attack_generator(generator))
        prepare_torch(seed)
        features = features_of(oracle.query(self.public), oracle.output_type)
        scale = channel_scale(features)
        decoder = nn.Sequential(
            EncoderDecoder(oracle.n_classes, self.public.shape[1], self.settings.width, self.settings.depth,
                           skips=True),
            nn.Sigmoid(),
        )
        config = TrainingConfig(epochs=self.settings.epochs, learning_rate=self.settings.learning_rate,
                                batch_size=self.settings.batch_size, seed=seed)
        decoder = train_classifier(decoder, features / scale,
                                   self.public.astype(np.float32), config, progress=progress,
                                   loss_fn=reconstruction_loss)
        with torch.no_grad():
            x = torch.as_tensor(features_of(np.asarray(targets), oracle.output_type) / scale, dtype=torch.float32)
            reconstructions = torch.cat([decoder(chunk) for chunk in x.split(32)])
        count = len(reconstructions)
        return AttackResult(
            attack=self.name, reconstructions=reconstructions,
            threat_model=ThreatModel(AccessLevel.LABEL_ONLY if oracle.output_type == "labels" else AccessLevel.SCORES,
                                     KNOWLEDGE),
            target_labels=torch.arange(count), final_cost=torch.full((count,), float("nan")),
            iterations=torch.full((count,), self.settings.epochs, dtype=torch.int64),
            stop_reasons=["max-iterations"] * count, seconds=time.perf_counter() - started,
            settings={**asdict(self.settings), "output_type": oracle.output_type, "seed": seed,
                      "decoder_scans": len(self.public)},
            queries_used=oracle.queries_used - queries_at_start,
        )


def features_of(outputs: np.ndarray, output_type: str) -> np.ndarray:
    """What the decoder reads. Probabilities are taken as log-probabilities: they are the
    logits up to a per-pixel constant, so a saturated 0.9999 still carries the margin."""
    return np.log(np.clip(outputs, PROBABILITY_FLOOR, None)) if output_type == "probs" else outputs


def channel_scale(features: np.ndarray) -> np.ndarray:
    """Each output channel's range on the attacker's own data, to scale the decoder's input."""
    return np.maximum(np.abs(features).max(axis=(0, 2, 3), keepdims=True), 1e-6)
