"""White-box access: the attacker holds the model's weights, nothing of its training data."""

from __future__ import annotations

import torch

from mirisk.errors import MiriskError
from mirisk.models.target import TargetModel


class WhiteBoxAccess:
    """A frozen copy of the target's network with its input contract (shape, value range,
    class count). Attacks receive this object, never the training data."""

    def __init__(self, target: TargetModel) -> None:
        if not target.gradients:
            raise MiriskError(
                f"white-box access needs gradients, which this model ({target.provenance.get('format', 'imported')}) "
                "does not give; use a black-box attack, or import it as TorchScript or .pt2"
            )
        self.network = target.frozen_network()
        self.input_shape = tuple(target.input_shape)
        self.value_range = (float(target.value_range[0]), float(target.value_range[1]))
        self.n_classes = target.n_classes

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The network's raw outputs, differentiable with respect to ``x``."""
        return self.network(x)

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities, differentiable with respect to ``x``."""
        return torch.softmax(self.network(x), dim=1)
