"""What every reconstruction attack returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from collections.abc import Sequence

import torch

from mirisk.errors import MiriskError
from mirisk.threats import ThreatModel


def as_target_labels(target_labels: Sequence[int] | torch.Tensor, n_classes: int) -> torch.Tensor:
    """The labels to reconstruct as a flat int64 tensor, each a class the model knows."""
    labels = torch.as_tensor(target_labels, dtype=torch.int64).flatten()
    if len(labels) == 0 or labels.min() < 0 or labels.max() >= n_classes:
        raise MiriskError(f"target labels must be in 0..{n_classes - 1}")
    return labels


@dataclass
class AttackResult:
    """Reconstructions ``[T, C, H, W]`` in the model's input range for ``target_labels``,
    with each target's final cost, iterations used and why it stopped."""

    attack: str
    threat_model: ThreatModel
    reconstructions: torch.Tensor
    target_labels: torch.Tensor
    final_cost: torch.Tensor
    iterations: torch.Tensor
    stop_reasons: list[str]
    seconds: float
    settings: dict[str, Any] = field(default_factory=dict)
    queries_used: int | None = None
    cost_history: torch.Tensor | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "attack": self.attack,
            "threat_model": self.threat_model.as_dict(),
            "n_targets": int(len(self.target_labels)),
            "iterations": {"max": int(self.iterations.max()), "mean": float(self.iterations.float().mean())},
            "stop_reasons": {reason: self.stop_reasons.count(reason) for reason in sorted(set(self.stop_reasons))},
            "final_cost_mean": float(self.final_cost.mean()),
            "seconds": self.seconds,
            "settings": self.settings,
            "queries_used": self.queries_used,
        }
