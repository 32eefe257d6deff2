"""Plain (non-private) training of image models: classifiers, segmenters, decoders."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from mirisk.runtime import keeps_caller_generators, prepare_torch


@dataclass(frozen=True)
class TrainingConfig:
    """Adam on cross-entropy; defaults overfit small face sets on purpose, as a model
    trained to convergence on 7 photos per person does."""

    epochs: int = 60
    learning_rate: float = 1e-3
    batch_size: int = 32
    weight_decay: float = 0.0
    seed: int = 0

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


DEFAULT_TRAINING: dict[str, TrainingConfig] = {
    "softmax": TrainingConfig(epochs=100, learning_rate=1e-3),
    "mlp": TrainingConfig(epochs=12, learning_rate=5e-4),
    "cnn": TrainingConfig(epochs=30, learning_rate=3e-3),
}

# DP-SGD runs plain SGD with momentum (Opacus clips per example, then adds noise); these
# settings were chosen on the bundled faces (benchmarks/face_defences.py, BENCHMARKS.md).
DP_MOMENTUM = 0.9
DP_TRAINING: dict[str, TrainingConfig] = {
    "softmax": TrainingConfig(epochs=60, learning_rate=25.0, batch_size=280),
    "mlp": TrainingConfig(epochs=30, learning_rate=0.5, batch_size=64),
    "cnn": TrainingConfig(epochs=60, learning_rate=0.5, batch_size=64),
}
# Per-example gradients of a wide linear layer are huge (64 x 10,304 x 3,000 for the MLP):
# ghost clipping gets their norms without them (BENCHMARKS.md, DP-SGD overhead).
DP_GRAD_SAMPLE_MODE = {"softmax": "ghost", "mlp": "ghost", "cnn": "hooks", "lenet": "hooks"}


@keeps_caller_generators
def train_classifier(
    model: nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    config: TrainingConfig,
    progress: Callable[[int], None] | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = nn.functional.cross_entropy,
    should_stop: Callable[[nn.Module, int], bool] | None = None,
) -> nn.Module:
    """Train ``model`` in place on ``images`` [N, C, H, W] against ``labels``: integer classes
    (per image, or per pixel for segmentation) or float targets for a regression
    ``loss_fn``; returns it in eval mode. ``progress(epoch)`` is called after each epoch;
    ``should_stop(model, epoch)`` may end training early."""
    prepare_torch(config.seed)
    x = torch.as_tensor(images, dtype=torch.float32)
    labels = np.asarray(labels)
    y = torch.as_tensor(labels, dtype=torch.float32 if np.issubdtype(labels.dtype, np.floating) else torch.int64)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    model.train()
    for epoch in range(config.epochs):
        for batch in torch.randperm(len(x), generator=generator).split(config.batch_size):
            optimiser.zero_grad(set_to_none=True)
            loss_fn(model(x[batch]), y[batch]).backward()
            optimiser.step()
        if progress is not None:
            progress(epoch + 1)
        if should_stop is not None and should_stop(model, epoch + 1):
            break
    return model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray, batch_size: int = 256) -> float:
    """Top-1 accuracy of ``model`` on a labelled set."""
    x = torch.as_tensor(images, dtype=torch.float32)
    predictions = torch.cat([model(chunk).argmax(1) for chunk in x.split(batch_size)])
    return float((predictions.numpy() == labels).mean())
