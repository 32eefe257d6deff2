"""One federated round, simulated: clients compute updates on their private images (FedSGD,
McMahan et al. 2017's baseline; or FedAvg's local SGD steps), apply their defences, and the
server records what it receives (each update, or only their mean under secure aggregation,
Bonawitz et al., CCS 2017)."""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from mirisk.errors import MiriskError
from mirisk.fl.local_training import local_update
from mirisk.fl.record import PROTOCOLS, ServerRecord, l2_norm
from mirisk.runtime import keeps_caller_generators, prepare_torch


@dataclass(frozen=True)
class ClientSettings:
    """The protocol and, for FedAvg, the local schedule (steps, learning rate, batch size)."""

    protocol: str = "fedsgd"
    local_steps: int = 1
    local_learning_rate: float = 0.1
    local_batch_size: int | None = None

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise MiriskError(f"unknown protocol {self.protocol!r}; choose fedsgd or fedavg")
        if self.local_steps < 1 or self.local_learning_rate <= 0:
            raise MiriskError("FedAvg needs local steps >= 1 and a positive local learning rate")
        if self.local_batch_size is not None and self.local_batch_size < 1:
            raise MiriskError(f"local batch size must be positive, got {self.local_batch_size}")


@dataclass(frozen=True)
class UpdateDefence:
    """Client-side defences on the update, applied in this order: clip its L2 norm to
    ``clip``; add Gaussian noise of standard deviation ``noise * clip`` (the Gaussian
    mechanism of DP-FedAvg, McMahan et al., ICLR 2018, here on each client's own update
    since the server is the adversary); keep only the ``sparsify`` fraction of largest
    entries (Zhu et al. 2019's pruning defence); round to ``quantise`` bits per tensor."""

    clip: float | None = None
    noise: float = 0.0
    sparsify: float | None = None
    quantise: int | None = None

    def __post_init__(self) -> None:
        if self.clip is not None and not self.clip > 0:
            raise MiriskError(f"--clip must be positive, got {self.clip}")
        if self.noise < 0 or (self.noise > 0 and self.clip is None):
            raise MiriskError("--dp-noise needs a non-negative multiplier and a --clip norm (noise is sigma * clip)")
        if self.sparsify is not None and not 0 < self.sparsify <= 1:
            raise MiriskError(f"--sparsify is the fraction of entries kept, in (0, 1]; got {self.sparsify}")
        if self.quantise is not None and not 1 <= self.quantise <= 16:
            raise MiriskError(f"--quantise takes 1 to 16 bits, got {self.quantise}")

    def apply(self, update: dict[str, torch.Tensor], generator: torch.Generator) -> dict[str, torch.Tensor]:
        update = dict(update)
        if self.clip is not None:
            scale = min(1.0, self.clip / max(l2_norm(update), 1e-12))
            update = {name: value * scale for name, value in update.items()}
        if self.noise > 0:
            update = {name: value + self.noise * self.clip * torch.randn(value.shape, generator=generator)
                      for name, value in update.items()}
        if self.sparsify is not None:
            magnitudes = torch.cat([value.abs().flatten() for value in update.values()])
            keep = max(1, int(round(self.sparsify * len(magnitudes))))
            threshold = torch.topk(magnitudes, keep).values[-1]
            update = {name: torch.where(value.abs() >= threshold, value, torch.zeros_like(value))
                      for name, value in update.items()}
        if self.quantise is not None:
            levels = 2 ** (self.quantise - 1) - 1 if self.quantise > 1 else 1
            update = {name: _quantised(value, levels) for name, value in update.items()}
        return update

    def epsilon(self, delta: float = 1e-5) -> float | None:
        """The round's (epsilon, delta) for one client's images under the Gaussian mechanism
        (RDP accountant, every client in the round); None without noise."""
        if self.noise <= 0:
            return None
        from opacus.accountants import RDPAccountant

        accountant = RDPAccountant()
        accountant.history = [(self.noise, 1.0, 1)]
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Optimal order")  # tiny noise: a loose but valid bound
            return float(accountant.get_epsilon(delta))

    def describe(self, delta: float = 1e-5) -> dict[str, Any]:
        return {**{k: v for k, v in asdict(self).items() if v not in (None, 0.0)},
                **({"epsilon_per_round": self.epsilon(delta), "delta": delta} if self.noise > 0 else {})}


def _quantised(value: torch.Tensor, levels: int) -> torch.Tensor:
    scale = value.abs().max().clamp_min(1e-12) / levels
    return torch.round(value / scale) * scale


@keeps_caller_generators
def simulate_round(module: nn.Module, images: torch.Tensor, labels: torch.Tensor, architecture: str, n_classes: int,
                   settings: ClientSettings = ClientSettings(), defence: UpdateDefence = UpdateDefence(),
                   n_clients: int = 1, seed: int = 0) -> ServerRecord:
    """Split ``images`` evenly over ``n_clients``; each computes its (defended) update from
    ``module``'s weights; the server records the mean (the single update when one client)."""
    prepare_torch(seed)
    if n_clients < 1 or len(images) % n_clients:
        raise MiriskError(f"{len(images)} images cannot be split evenly over {n_clients} clients")
    generator = torch.Generator().manual_seed(seed)
    weights = {name: value.detach().clone() for name, value in module.named_parameters()}
    updates = []
    for chunk_images, chunk_labels in zip(images.chunk(n_clients), labels.chunk(n_clients), strict=True):
        update = local_update(module, weights, chunk_images, chunk_labels, settings.protocol, settings.local_steps,
                              settings.local_learning_rate, settings.local_batch_size)
        updates.append(defence.apply({k: v.detach() for k, v in update.items()}, generator))
    mean = {name: torch.stack([update[name] for update in updates]).mean(0) for name in weights}
    return ServerRecord(
        weights=weights, update=mean, protocol=settings.protocol, n_images=len(images), architecture=architecture,
        input_shape=tuple(images.shape[1:]), n_classes=n_classes,
        local_steps=settings.local_steps if settings.protocol == "fedavg" else 1,
        local_learning_rate=settings.local_learning_rate if settings.protocol == "fedavg" else 0.0,
        local_batch_size=settings.local_batch_size, n_clients=n_clients, defence=defence.describe(),
    )
