"""A client's local computation as a pure function of the weights, so that the simulation
and the attack (which replays it on dummy images) share one definition."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call, grad

Parameters = dict[str, torch.Tensor]


def loss_of(module: nn.Module) -> Callable[[Parameters, torch.Tensor, torch.Tensor], torch.Tensor]:
    """Cross-entropy of ``module`` under given weights; ``targets`` are class indices or,
    for an attack that learns them (DLG), class probabilities."""

    def loss(parameters: Parameters, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(functional_call(module, parameters, (images,)), targets)

    return loss


def local_update(module: nn.Module, parameters: Parameters, images: torch.Tensor, targets: torch.Tensor,
                 protocol: str, local_steps: int = 1, learning_rate: float = 0.1,
                 batch_size: int | None = None) -> Parameters:
    """FedSGD: the gradient on all ``images``. FedAvg: ``local_steps`` of plain SGD over
    consecutive mini-batches of ``batch_size`` (one pass in order, wrapping around), returned
    as new weights minus old. Differentiable in ``images`` and ``targets``."""
    gradient = grad(loss_of(module))
    if protocol == "fedsgd":
        return gradient(parameters, images, targets)
    size = batch_size or len(images)
    current = parameters
    for step in range(local_steps):
        batch = (torch.arange(size) + step * size) % len(images)
        step_gradient = gradient(current, images[batch], targets[batch])
        current = {name: value - learning_rate * step_gradient[name] for name, value in current.items()}
    return {name: current[name] - parameters[name] for name in parameters}
