"""Label smoothing, positive or negative, as a training loss.

Struppek, Hintersdorf & Kersting, "Be Careful What You Smooth For: Label Smoothing Can Be a
Privacy Shield but Also a Catalyst for Model Inversion Attacks", ICLR 2024: training on
smoothed targets (alpha > 0) made white-box inversion *more* successful; negative smoothing
(alpha < 0) pushes the model's scores apart and made inversion harder. Defends (or not)
against any attacker of the trained weights or scores; it costs no privacy accounting and
gives no guarantee."""

from __future__ import annotations

import torch
from torch import nn

from mirisk.errors import MiriskError


class SmoothedCrossEntropy(nn.Module):
    """Cross-entropy against ``(1 - alpha) * one_hot + alpha / n_classes``, ``alpha`` in
    [-1, 1). PyTorch's own ``label_smoothing`` refuses negative values, hence this module;
    ``reduction`` ("mean" or "none") is what Opacus's ghost clipping switches."""

    def __init__(self, alpha: float, reduction: str = "mean") -> None:
        super().__init__()
        if not -1.0 <= alpha < 1.0:
            raise MiriskError(f"label smoothing must be in [-1, 1), got {alpha}")
        self.alpha = alpha
        self.reduction = reduction

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        log_probabilities = torch.log_softmax(logits, dim=1)
        true_class = -log_probabilities.gather(1, labels.unsqueeze(1)).squeeze(1)
        uniform = -log_probabilities.mean(dim=1)
        per_example = (1.0 - self.alpha) * true_class + self.alpha * uniform
        return per_example if self.reduction == "none" else per_example.mean()
