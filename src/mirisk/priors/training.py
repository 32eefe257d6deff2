"""Train a face prior on public faces: hinge-loss GAN with DiffAugment, an EMA of the
generator (Karras et al. 2018; Yazici et al., ICLR 2019), seeded and resumable.

A checkpoint (``checkpoint.safetensors`` + ``checkpoint.json``, never a pickle) is written
atomically every ``checkpoint_every`` steps; ``train_prior`` picks up from it when present.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save

from mirisk.artifacts import make_private_dir, read_json, write_bytes, write_json
from mirisk.data.images import ImageDataset
from mirisk.errors import MiriskError
from mirisk.priors.augment import diff_augment
from mirisk.priors.gan import Discriminator, Generator, PriorShape
from mirisk.priors.store import FacePrior
from mirisk.runtime import prepare_torch

CHECKPOINT_WEIGHTS, CHECKPOINT_STATE = "checkpoint.safetensors", "checkpoint.json"


@dataclass(frozen=True)
class PriorTraining:
    """Settings of one prior's training run."""

    steps: int = 20000
    batch_size: int = 64
    learning_rate: float = 2e-4
    ema_decay: float = 0.999
    seed: int = 0
    checkpoint_every: int = 500

    def __post_init__(self) -> None:
        if not (self.steps >= 1 and self.batch_size >= 2 and self.checkpoint_every >= 1):
            raise MiriskError("steps and checkpoint_every must be at least 1 and batch_size at least 2")
        if not (0 < self.learning_rate < 1 and 0 <= self.ema_decay < 1):
            raise MiriskError(f"learning rate must be in (0, 1) and EMA decay in [0, 1); got "
                              f"{self.learning_rate}, {self.ema_decay}")


@dataclass
class PriorNetworks:
    generator: Generator
    discriminator: Discriminator
    ema: Generator
    optimiser_g: torch.optim.Optimizer
    optimiser_d: torch.optim.Optimizer


def half_resolution(images: np.ndarray, shape: PriorShape) -> torch.Tensor:
    """Public images ``[N, C, H, W]`` in [0, 1] at the discriminator's resolution, with their mirror images."""
    tensor = torch.as_tensor(images, dtype=torch.float32)
    tensor = torch.nn.functional.interpolate(tensor, size=shape.half, mode="bilinear", antialias=True,
                                             align_corners=False)
    return torch.cat([tensor, tensor.flip(-1)])


def _networks(shape: PriorShape, settings: PriorTraining) -> PriorNetworks:
    generator, discriminator = Generator(shape), Discriminator(shape)
    ema = copy.deepcopy(generator).eval().requires_grad_(False)
    betas = (0.0, 0.99)
    return PriorNetworks(generator, discriminator, ema,
                         torch.optim.Adam(generator.parameters(), lr=settings.learning_rate, betas=betas),
                         torch.optim.Adam(discriminator.parameters(), lr=settings.learning_rate, betas=betas))


def _state_tensors(networks: PriorNetworks) -> dict[str, torch.Tensor]:
    tensors = {}
    for prefix, module in (("generator", networks.generator), ("discriminator", networks.discriminator),
                           ("ema", networks.ema)):
        tensors.update({f"{prefix}.{k}": v.detach().clone().contiguous() for k, v in module.state_dict().items()})
    for prefix, optimiser in (("optimiser_g", networks.optimiser_g), ("optimiser_d", networks.optimiser_d)):
        for index, state in optimiser.state_dict()["state"].items():
            tensors.update({f"{prefix}.{index}.{k}": torch.as_tensor(v).clone().contiguous() for k, v in state.items()})
    return tensors


def _load_state(networks: PriorNetworks, tensors: dict[str, torch.Tensor]) -> None:
    for prefix, module in (("generator", networks.generator), ("discriminator", networks.discriminator),
                           ("ema", networks.ema)):
        module.load_state_dict({k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")})
    for prefix, optimiser in (("optimiser_g", networks.optimiser_g), ("optimiser_d", networks.optimiser_d)):
        state = optimiser.state_dict()
        per_param: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith(prefix + "."):
                _, index, name = key.split(".", 2)
                per_param.setdefault(int(index), {})[name] = value
        state["state"] = per_param
        optimiser.load_state_dict(state)


def _save_checkpoint(folder: Path, networks: PriorNetworks, step: int, rng: torch.Generator,
                     extra: dict[str, object]) -> None:
    write_bytes(folder / CHECKPOINT_WEIGHTS, save(_state_tensors(networks)))
    write_json(folder / CHECKPOINT_STATE, {"step": step, "rng": rng.get_state().tolist(), **extra})


def _checkpoint_state(folder: Path) -> dict[str, Any]:
    """The state of the checkpoint in ``folder``; a file of that name that mirisk did not write is refused."""
    state = read_json(folder / CHECKPOINT_STATE)
    if not (isinstance(state, dict) and {"step", "rng", "settings", "shape"} <= set(state)
            and (folder / CHECKPOINT_WEIGHTS).is_file()):
        raise MiriskError(f"{folder / CHECKPOINT_STATE} is not a prior checkpoint of mirisk's; choose another --out "
                          "(nothing there was changed)")
    return state


def train_prior(images: np.ndarray, shape: PriorShape, settings: PriorTraining, folder: Path,
                log: Callable[[str], None] = print, stop_after: int | None = None) -> PriorNetworks:
    """Train (or resume) a prior on ``images`` ``[N, C, H, W]`` in [0, 1]; checkpoints go to
    ``folder``. ``stop_after`` ends this sitting at that step (checkpointed), to resume later."""
    prepare_torch()
    make_private_dir(folder)
    torch.manual_seed(settings.seed)  # the networks' initial weights
    networks = _networks(shape, settings)
    rng = torch.Generator().manual_seed(settings.seed)
    step = 0
    if (folder / CHECKPOINT_STATE).exists():
        state = _checkpoint_state(folder)
        if _resumable(state["settings"]) != _resumable(asdict(settings)) or state.get("shape") != shape.as_dict():
            raise MiriskError(f"{folder} holds a checkpoint of other settings; use a new folder")
        step = int(state["step"])
        if step > settings.steps:
            raise MiriskError(f"{folder} holds a run at step {step}, past the {settings.steps} steps asked for")
        _load_state(networks, load_file(folder / CHECKPOINT_WEIGHTS))
        rng.set_state(torch.tensor(state["rng"], dtype=torch.uint8))
        log(f"resumed at step {step}")
    real = half_resolution(images, shape)
    extra = {"settings": asdict(settings), "shape": shape.as_dict()}
    started = time.perf_counter()
    last = settings.steps if stop_after is None else min(stop_after, settings.steps)
    while step < last:
        batch = real[torch.randint(0, len(real), (settings.batch_size,), generator=rng)]
        latent = torch.randn(settings.batch_size, shape.latent_dim, generator=rng)
        fake = networks.generator.forward_half(latent)
        loss_d = (torch.relu(1 - networks.discriminator(diff_augment(batch * 2 - 1, rng))).mean()
                  + torch.relu(1 + networks.discriminator(diff_augment(fake.detach() * 2 - 1, rng))).mean())
        networks.optimiser_d.zero_grad(set_to_none=True)
        loss_d.backward()
        networks.optimiser_d.step()
        loss_g = -networks.discriminator(diff_augment(fake * 2 - 1, rng)).mean()
        networks.optimiser_g.zero_grad(set_to_none=True)
        loss_g.backward()
        networks.optimiser_g.step()
        with torch.no_grad():
            for averaged, current in zip(networks.ema.parameters(), networks.generator.parameters(), strict=True):
                averaged.lerp_(current, 1 - settings.ema_decay)
            for averaged, current in zip(networks.ema.buffers(), networks.generator.buffers(), strict=True):
                averaged.copy_(current)
        step += 1
        if step % 50 == 0:
            log(f"step {step} loss_d {loss_d.item():.3f} loss_g {loss_g.item():.3f} "
                f"{(time.perf_counter() - started) / 50:.2f} s/step")
            started = time.perf_counter()
        if step % settings.checkpoint_every == 0 or step == last:
            _save_checkpoint(folder, networks, step, rng, extra)
    if step == settings.steps and _checkpoint_state(folder)["settings"] != extra["settings"]:
        _save_checkpoint(folder, networks, step, rng, extra)  # a run ended early: it now asks for the steps it has
    return networks


def _resumable(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings a run must keep to be resumed: all but its length (nothing in a step
    depends on how many steps are planned, so a run may be extended or ended early)."""
    return {key: value for key, value in settings.items() if key != "steps"}


def prior_from_checkpoint(folder: Path, public: ImageDataset) -> FacePrior:
    """The finished run in ``folder`` as a prior (the EMA generator and the discriminator),
    recording the public data's fingerprint and people, the settings, steps and seed."""
    from mirisk import __version__

    state = _checkpoint_state(folder)
    if state["step"] != state["settings"]["steps"]:
        raise MiriskError(f"{folder}: the run is at step {state['step']} of {state['settings']['steps']}; "
                          "run the same command again to finish it")
    tensors = load_file(folder / CHECKPOINT_WEIGHTS)
    shape = PriorShape(**state["shape"])
    generator, discriminator = Generator(shape), Discriminator(shape)
    generator.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
    discriminator.load_state_dict({k[14:]: v for k, v in tensors.items() if k.startswith("discriminator.")})
    metadata = {"data": {"source": public.source, "fingerprint": public.fingerprint(),
                         "people": list(public.class_names), "photos": len(public.images)},
                "training": {**state["settings"], "steps_run": state["step"]},
                "seed": state["settings"]["seed"], "mirisk_version": __version__}
    return FacePrior(generator.eval().requires_grad_(False), discriminator.eval().requires_grad_(False), metadata)
