"""Reconstruct a client's images from what the server recorded.

- DLG, "Deep Leakage from Gradients" (Zhu, Liu & Han, NeurIPS 2019): find dummy images
  *and* soft labels whose update matches the recorded one in squared L2 distance (here with
  signed Adam in place of the paper's L-BFGS; unsigned Adam did not converge in our runs).
- iDLG (Zhao, Mopuri & Bilen, 2020): the label is read off the output layer's bias
  gradient, whose entry for the true class is the only negative one for a single image;
  for batches the label counts are estimated from the same entries (as in Wainakh et al.,
  "User-Level Label Leakage from Gradients", PETS 2022).
- Inverting Gradients (Geiping, Bauermeister, Dröge & Moeller, NeurIPS 2020): cosine
  distance between the updates plus total variation, Adam on signed gradients with step
  decay, images boxed to [0, 1], several restarts keeping the best.
FedAvg-aware: the dummy images go through the same local SGD steps as a client's (Geiping
et al. Sec. 5; the server knows the schedule), so multi-step updates are matched exactly.

Threat model: an honest-but-curious server. It knows the model it sent (white-box), the
update it received, the number of images and the local schedule; nothing else about the
client's data."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch
from torch.func import vmap

from mirisk.attacks.contract import Progress, attack_generator
from mirisk.attacks.result import AttackResult
from mirisk.errors import MiriskError
from mirisk.fl.local_training import local_update
from mirisk.fl.record import ServerRecord
from mirisk.runtime import keeps_caller_generators, prepare_torch
from mirisk.threats import AccessLevel, ThreatModel
from mirisk.validation import check_number

OBJECTIVES = ("l2", "cosine")
THREAT_MODEL = ThreatModel(
    access=AccessLevel.WHITE_BOX,
    knowledge=("the model the server sent", "the update the client returned", "the number of images",
               "the local training schedule"),
)


def output_bias_direction(record: ServerRecord) -> torch.Tensor:
    """The output layer's bias gradient as the server sees it (FedAvg's update is minus a
    sum of gradients, so its sign is flipped)."""
    biases = [value for name, value in record.update.items()
              if name.endswith("bias") and value.shape == (record.n_classes,)]
    if not biases:
        raise MiriskError("label recovery needs an output layer with a bias of one entry per class")
    return biases[-1] * (-1.0 if record.protocol == "fedavg" else 1.0)


def recover_labels(record: ServerRecord) -> torch.Tensor:
    """iDLG's label for one image (the most negative bias-gradient entry); for a batch, label
    counts proportional to each class's shortfall below the typical (absent-class) entry,
    rounded by largest remainder to ``n_images``."""
    direction = output_bias_direction(record).double()
    n = record.n_images
    if n == 1:
        return direction.argmin().reshape(1)
    shortfall = (direction.median() - direction).clamp_min(0)
    if shortfall.sum() <= 0:
        raise MiriskError("the output bias gradient shows no class below the others: labels cannot be recovered")
    share = shortfall / shortfall.sum() * n
    counts = share.floor().long()
    remainder = int(n - counts.sum())
    counts[torch.argsort(share - counts, descending=True)[:remainder]] += 1
    return torch.repeat_interleave(torch.arange(len(counts)), counts)


@dataclass(frozen=True)
class GradientInversion:
    """Optimisation-based reconstruction; ``restarts`` are optimised together as one batch."""

    name: str = "inverting-gradients"
    objective: str = "cosine"
    tv_weight: float = 1e-4
    iterations: int = 1000
    learning_rate: float = 0.1
    restarts: int = 2
    learn_labels: bool = False

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise MiriskError(f"unknown objective {self.objective!r}; choose l2 or cosine")
        if self.iterations < 1 or self.restarts < 1:
            raise MiriskError("gradient inversion needs iterations and restarts >= 1")
        check_number("the gradient attack's learning rate", self.learning_rate, 0, low_open=True)
        check_number("the gradient attack's total-variation weight", self.tv_weight, 0)

    @keeps_caller_generators  # building the record's module draws initial weights
    def run(self, record: ServerRecord, labels: torch.Tensor | None = None, *,
            generator: torch.Generator | None = None, progress: Progress | None = None) -> AttackResult:
        """The client's images ``[n_images, C, H, W]`` (the best restart) for the labels given
        (None: recovered from the update, iDLG; DLG learns them), with the final objective
        as every image's cost (the images are matched jointly)."""
        prepare_torch()
        started = time.perf_counter()
        module, weights = record.module(), record.weights
        names = list(weights)
        target = torch.cat([record.update[name].flatten() for name in names])
        # Sparsified or coarsely quantised updates zero most entries, and the zeros carry
        # little: a defence-aware attacker compares on the entries that were sent.
        compressed = "sparsify" in record.defence or "quantise" in record.defence
        sent = target != 0 if compressed else torch.ones_like(target, dtype=torch.bool)
        target = target[sent]
        generator = attack_generator(generator)
        shape = (self.restarts, record.n_images, *record.input_shape)
        images = torch.rand(shape, generator=generator).requires_grad_(True)
        variables = [images]
        if self.learn_labels:
            label_logits = torch.randn(self.restarts, record.n_images, record.n_classes, generator=generator)
            label_logits.requires_grad_(True)
            variables.append(label_logits)
        else:
            labels = recover_labels(record) if labels is None else torch.as_tensor(labels, dtype=torch.int64)
            if labels.shape != (record.n_images,) or not bool(((labels >= 0) & (labels < record.n_classes)).all()):
                raise MiriskError(f"give one label in [0, {record.n_classes}) per image ({record.n_images})")

        def flat_update(dummy: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            update = local_update(module, weights, dummy, targets, record.protocol, record.local_steps,
                                  record.local_learning_rate, record.local_batch_size)
            return torch.cat([update[name].flatten() for name in names])[sent]

        def objective() -> torch.Tensor:
            if self.learn_labels:
                updates = vmap(flat_update)(images, torch.softmax(label_logits, dim=-1))
            else:
                updates = vmap(flat_update, in_dims=(0, None))(images, labels)
            if self.objective == "l2":
                distance = ((updates - target) ** 2).sum(dim=1)
            else:
                distance = 1 - torch.nn.functional.cosine_similarity(updates, target.unsqueeze(0), dim=1)
            return distance + self.tv_weight * total_variation(images)

        optimiser = torch.optim.Adam(variables, lr=self.learning_rate)
        milestones = [int(self.iterations * fraction) for fraction in (3 / 8, 5 / 8, 7 / 8)]
        schedule = torch.optim.lr_scheduler.MultiStepLR(optimiser, milestones=milestones, gamma=0.1)
        for iteration in range(self.iterations):
            optimiser.zero_grad(set_to_none=True)
            objective().sum().backward()
            for variable in variables:
                variable.grad.sign_()  # signed Adam (Geiping et al.)
            optimiser.step()
            schedule.step()
            with torch.no_grad():
                images.clamp_(0, 1)
            if progress is not None:
                progress(iteration + 1)
        with torch.no_grad():
            final = objective()
        best = int(final.argmin())
        used = label_logits[best].argmax(dim=-1) if self.learn_labels else labels
        return AttackResult(
            attack=self.name,
            threat_model=THREAT_MODEL,
            reconstructions=images[best].detach().clone(),
            target_labels=used.detach().to(torch.int64),
            final_cost=final[best].detach().expand(record.n_images).clone(),
            iterations=torch.full((record.n_images,), self.iterations, dtype=torch.int64),
            stop_reasons=["max-iterations"] * record.n_images,
            seconds=time.perf_counter() - started,
            settings=asdict(self),
        )


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of neighbouring pixels, per leading index: ``[R, ...]`` -> ``[R]``."""
    vertical = (images[..., 1:, :] - images[..., :-1, :]).abs().flatten(1).mean(1)
    horizontal = (images[..., 1:] - images[..., :-1]).abs().flatten(1).mean(1)
    return vertical + horizontal


DLG = GradientInversion(name="dlg", objective="l2", tv_weight=0.0, learn_labels=True, restarts=1)
IDLG = GradientInversion(name="idlg", objective="l2", tv_weight=0.0, restarts=1)
INVERTING_GRADIENTS = GradientInversion()
ATTACKS = {attack.name: attack for attack in (DLG, IDLG, INVERTING_GRADIENTS)}
