"""A training recipe's defences, chosen together and recorded in the model's metadata."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from mirisk.defences.dp_sgd import DPSettings
from mirisk.defences.label_smoothing import SmoothedCrossEntropy
from mirisk.errors import MiriskError


@dataclass(frozen=True)
class TrainingDefences:
    """DP-SGD (``dp``), L2 weight decay, dropout, early stopping (patience in epochs, on
    one validation photo per person held back from training) and label smoothing (negative
    values allowed). The default is an undefended model."""

    dp: DPSettings | None = None
    weight_decay: float = 0.0
    dropout: float = 0.0
    early_stopping: int | None = None
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        if not self.weight_decay >= 0:
            raise MiriskError(f"weight decay must be zero or positive, got {self.weight_decay}")
        if not 0 <= self.dropout < 1:
            raise MiriskError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.early_stopping is not None and self.early_stopping < 1:
            raise MiriskError(f"early-stopping patience must be at least 1 epoch, got {self.early_stopping}")
        if self.dp is not None and self.early_stopping is not None:
            raise MiriskError("early stopping picks the epoch on validation photos, which DP-SGD's guarantee does "
                              "not cover; use one or the other")
        SmoothedCrossEntropy(self.label_smoothing)  # validates the range

    @property
    def loss(self) -> nn.Module:
        """The training criterion (a module, as DP-SGD's ghost clipping needs)."""
        if self.label_smoothing == 0:
            return nn.CrossEntropyLoss()
        return SmoothedCrossEntropy(self.label_smoothing)

    @property
    def is_default(self) -> bool:
        return self == TrainingDefences()

    def as_dict(self) -> dict[str, Any]:
        """The non-default defences, for the model's metadata (DP's record is added by training)."""
        chosen: dict[str, Any] = {}
        if self.weight_decay:
            chosen["weight_decay"] = self.weight_decay
        if self.dropout:
            chosen["dropout"] = self.dropout
        if self.early_stopping is not None:
            chosen["early_stopping_patience"] = self.early_stopping
        if self.label_smoothing:
            chosen["label_smoothing"] = self.label_smoothing
        return chosen
