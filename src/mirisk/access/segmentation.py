"""Query access to a segmentation model: its per-pixel outputs of one served type.

What the outputs reveal is set by the type served: per-pixel probabilities (``probs``), raw
scores (``logits``) or hard label maps (``labels``, output restriction)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mirisk.errors import MiriskError
from mirisk.models.segmentation import SegmentationTarget

OUTPUT_TYPES = ("probs", "logits", "labels")


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
