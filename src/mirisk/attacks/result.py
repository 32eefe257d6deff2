"""What every reconstruction attack returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from mirisk.threats import ThreatModel


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
