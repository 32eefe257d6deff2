"""Training-time defences: differential privacy, regularisation, early stopping, label smoothing."""

from mirisk.defences.dp_sgd import DPSettings, train_dp_sgd
from mirisk.defences.early_stopping import EarlyStopping
from mirisk.defences.label_smoothing import SmoothedCrossEntropy
from mirisk.defences.recipe import TrainingDefences

__all__ = ["DPSettings", "EarlyStopping", "SmoothedCrossEntropy", "TrainingDefences", "train_dp_sgd"]
