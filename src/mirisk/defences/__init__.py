"""Training-time defences: differentially private training."""

from mirisk.defences.dp_sgd import DPSettings, train_dp_sgd

__all__ = ["DPSettings", "train_dp_sgd"]
