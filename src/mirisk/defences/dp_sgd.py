"""Differentially private training with DP-SGD (Opacus).

Abadi et al., "Deep Learning with Differential Privacy", ACM CCS 2016: clip each example's
gradient to ``max_grad_norm`` and add Gaussian noise of scale ``noise_multiplier *
max_grad_norm`` to every batch's sum, with Poisson sampling. The noise multiplier is chosen
so that the whole run meets the requested (epsilon, delta) under the PRV accountant
(Gopi, Lee & Wutschitz, NeurIPS 2021). Defends against any attacker, white-box included:
the guarantee covers everything derived from the trained weights.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mirisk.errors import MiriskError
from mirisk.runtime import keeps_caller_generators, prepare_torch

ACCOUNTANT = "prv"
# Opacus searches the noise multiplier to an absolute tolerance of 0.01 by default: 10% at
# epsilon 0.1. A relative 1% keeps the spent epsilon within 1% of the target at every scale.
EPSILON_TOLERANCE = 0.01
GRAD_SAMPLE_MODES = ("hooks", "ghost")


@dataclass(frozen=True)
class DPSettings:
    """The privacy target and the clipping norm; delta defaults to 1e-5."""

    epsilon: float
    delta: float = 1e-5
    max_grad_norm: float = 1.0

    def __post_init__(self) -> None:
        if not self.epsilon > 0:
            raise MiriskError(f"DP epsilon must be positive, got {self.epsilon}")
        if not 0 < self.delta < 1:
            raise MiriskError(f"DP delta must be in (0, 1), got {self.delta}")
        if not self.max_grad_norm > 0:
            raise MiriskError(f"DP clipping norm must be positive, got {self.max_grad_norm}")


@keeps_caller_generators
def train_dp_sgd(
    module: nn.Module,
    dataset: TensorDataset,
    criterion: nn.Module,
    settings: DPSettings,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int = 0,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    grad_sample_mode: str = "hooks",
    on_epoch: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Train ``module`` in place with DP-SGD and return the ``dp`` record for its metadata:
    epsilon (spent, by the accountant), delta, noise_multiplier, max_grad_norm,
    sample_rate, steps, accountant and clipping. ``criterion`` is a loss module with a
    ``reduction`` attribute (mean). ``grad_sample_mode``: "hooks" materialises per-example
    gradients; "ghost" (ghost clipping, Li et al. ICLR 2022; Bu et al. 2023) gets their norms
    without them, far cheaper for wide linear layers (BENCHMARKS.md)."""
    if grad_sample_mode not in GRAD_SAMPLE_MODES:
        raise MiriskError(f"unknown per-example gradient mode {grad_sample_mode!r}; choose hooks or ghost")
    from opacus import PrivacyEngine

    prepare_torch(seed)
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(dataset, batch_size=min(batch_size, len(dataset)), shuffle=True, generator=generator)
    optimizer = torch.optim.SGD(module.parameters(), lr=learning_rate, momentum=momentum, weight_decay=weight_decay)
    with warnings.catch_warnings():
        # Opacus's reminders, not problems: secure_mode only matters for a production run
        # (documented), and the backward-hook note is about inputs that need no gradient.
        warnings.filterwarnings("ignore", message=".*[Ss]ecure RNG.*")
        warnings.filterwarnings("ignore", message=".*Optimal order.*")
        warnings.filterwarnings("ignore", message=".*Full backward hook.*")
        # PRV takes log(1 - q) = log(0) when every example is in every batch; harmless.
        warnings.filterwarnings("ignore", message="divide by zero encountered in log", category=RuntimeWarning)
        engine = PrivacyEngine(accountant=ACCOUNTANT, secure_mode=False)
        private = engine.make_private_with_epsilon(
            module=module, optimizer=optimizer, data_loader=loader, target_epsilon=settings.epsilon,
            target_delta=settings.delta, epochs=epochs, max_grad_norm=settings.max_grad_norm,
            noise_generator=torch.Generator().manual_seed(seed + 1),
            epsilon_tolerance=EPSILON_TOLERANCE * settings.epsilon, criterion=criterion,
            grad_sample_mode=grad_sample_mode,
        )
        private_module, optimizer, private_loader = private[0], private[1], private[-1]
        loss_of = private[2] if grad_sample_mode == "ghost" else criterion
        private_module.train()
        for epoch in range(epochs):
            for inputs, targets in private_loader:
                if len(inputs) == 0:
                    continue
                optimizer.zero_grad(set_to_none=True)
                loss_of(private_module(inputs), targets).backward()
                optimizer.step()
            if on_epoch is not None:
                on_epoch(epoch)
        spent = engine.get_epsilon(settings.delta)
    # Opacus trained ``module`` itself (wrapped); unhook it so it serves and inverts as a plain module.
    private_module.cleanup()
    module.eval()
    return {
        "epsilon": float(spent),
        "target_epsilon": settings.epsilon,
        "delta": settings.delta,
        "noise_multiplier": float(optimizer.noise_multiplier),
        "max_grad_norm": settings.max_grad_norm,
        "sample_rate": float(1 / len(private_loader)),
        "steps": int(epochs * len(private_loader)),
        "accountant": ACCOUNTANT,
        "clipping": f"per example ({grad_sample_mode})",
        "mechanism": "DP-SGD (Abadi et al. 2016) via Opacus",
    }
