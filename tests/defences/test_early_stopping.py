"""Early stopping ends training once validation stops improving and keeps the best weights."""

import numpy as np
import pytest
import torch
from torch import nn

from mirisk.defences import EarlyStopping
from mirisk.errors import MiriskError


def test_stops_after_patience_and_restores_the_best_epoch():
    images = np.zeros((4, 1, 1, 2), dtype=np.float32)
    labels = np.array([0, 1, 0, 1])
    model = nn.Sequential(nn.Flatten(), nn.Linear(2, 2))
    stopper = EarlyStopping(images, labels, patience=2)
    with torch.no_grad():
        model[1].bias.copy_(torch.tensor([0.0, 0.0]))  # loss log 2: the best this model can do here
    best = {name: value.clone() for name, value in model.state_dict().items()}
    assert not stopper.should_stop(model, 1)
    with torch.no_grad():
        model[1].bias.copy_(torch.tensor([5.0, 0.0]))  # worse on the balanced labels
    assert not stopper.should_stop(model, 2)
    assert stopper.should_stop(model, 3)
    stopper.restore_best(model)
    assert stopper.best_epoch == 1 and stopper.last_epoch == 3 and all(torch.equal(model.state_dict()[k], v) for k, v in best.items())


def test_bad_patience_and_empty_validation_are_named():
    with pytest.raises(MiriskError, match="patience"):
        EarlyStopping(np.zeros((2, 1, 1, 1)), np.zeros(2), patience=0)
    with pytest.raises(MiriskError, match="validation"):
        EarlyStopping(np.zeros((0, 1, 1, 1)), np.zeros(0), patience=3)
