"""Early stopping on a validation set carved from the training data: fewer epochs past the
point where the model stops generalising means less memorisation of its training records
(the overfitting that Fredrikson et al., CCS 2015, and Yeom et al., CSF 2018, tie to
inversion and membership risk). No guarantee; it only narrows the generalisation gap."""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from mirisk.errors import MiriskError


class EarlyStopping:
    """Stop once the validation loss has not improved for ``patience`` epochs, and put the
    best weights back."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, patience: int) -> None:
        if patience < 1:
            raise MiriskError(f"early-stopping patience must be at least 1 epoch, got {patience}")
        if len(images) == 0:
            raise MiriskError("early stopping needs validation photos: keep at least two training photos per person")
        self.images = torch.as_tensor(images, dtype=torch.float32)
        self.labels = torch.as_tensor(labels, dtype=torch.int64)
        self.patience = patience
        self.best_loss = float("inf")
        self.best_epoch = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.last_epoch = 0

    @torch.no_grad()
    def should_stop(self, model: nn.Module, epoch: int) -> bool:
        """Record ``model`` after ``epoch`` (1-based); True once patience has run out."""
        self.last_epoch = epoch
        was_training = model.training
        model.eval()
        loss = float(nn.functional.cross_entropy(model(self.images), self.labels))
        model.train(was_training)
        if loss < self.best_loss:
            self.best_loss, self.best_epoch = loss, epoch
            self.best_state = copy.deepcopy(model.state_dict())
        return epoch - self.best_epoch >= self.patience

    def restore_best(self, model: nn.Module) -> None:
        if self.best_state is not None:
            model.load_state_dict(self.best_state)
