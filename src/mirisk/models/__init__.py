"""Target models: the architectures, their training, and safe saving and loading."""

from mirisk.models.architectures import ARCHITECTURES, build_model
from mirisk.models.target import TargetModel
from mirisk.models.store import load_target, save_target
from mirisk.models.training import TrainingConfig, train_classifier

__all__ = [
    "ARCHITECTURES",
    "build_model",
    "TargetModel",
    "load_target",
    "save_target",
    "TrainingConfig",
    "train_classifier",
]
