"""Federated leakage end to end: simulate one round on real images, reconstruct the
client's batch from the server's record, and measure the reconstructions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch

from mirisk.data.faces import load_faces
from mirisk.data.images import ImageDataset
from mirisk.data.mri import BUNDLED as MRI_BUNDLED
from mirisk.data.mri import load_bundled_slices
from mirisk.errors import MiriskError
from mirisk.attacks.contract import seeded
from mirisk.attacks.gradient import ATTACKS, GradientInversion
from mirisk.attacks.result import AttackResult
from mirisk.fl.metrics import reconstruction_metrics
from mirisk.fl.record import ServerRecord
from mirisk.fl.simulation import ClientSettings, UpdateDefence, simulate_round
from mirisk.models.architectures import build_model
from mirisk.runtime import keeps_caller_generators, prepare_torch, versions

THREAT_MODEL = ("white-box server (honest-but-curious): knows the global weights it sent, the update it received, "
                "the number of images and the local schedule")


@dataclass(frozen=True)
class FederatedSetting:
    """The round (model family, images per client, clients, protocol, defences) and the
    attack (name, iterations, restarts). Images are average-pooled by ``downscale`` first,
    as a small client model would take them."""

    architecture: str = "cnn"
    batch: int = 1
    n_clients: int = 1
    client: ClientSettings = field(default_factory=ClientSettings)
    defence: UpdateDefence = field(default_factory=UpdateDefence)
    attack: str = "inverting-gradients"
    iterations: int = 1000
    restarts: int = 2
    downscale: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        configured_attack(self.attack, self.iterations, self.restarts)  # validates the attack's settings
        if self.batch < 1 or self.n_clients < 1 or self.downscale < 1:
            raise MiriskError("--batch, --clients and --downscale must be at least 1")


@dataclass
class GradientAttackReport:
    payload: dict[str, Any]
    reconstructions: np.ndarray
    originals: np.ndarray
    labels: np.ndarray


def configured_attack(name: str, iterations: int, restarts: int) -> GradientInversion:
    """A named gradient attack with the run's steps and restarts; unknown names are an error."""
    if name not in ATTACKS:
        raise MiriskError(f"unknown gradient attack {name!r}; choose from {', '.join(ATTACKS)}")
    return replace(ATTACKS[name], iterations=iterations, restarts=restarts)


def load_client_images(data: str | None) -> ImageDataset:
    """Faces (a folder of people, or the bundled AT&T copy) or the bundled IXI T1 slices
    (``bundled:ixi_t1``: 5 sagittal slices per subject, the subject as the label)."""
    if data == MRI_BUNDLED:
        slices = load_bundled_slices(slices=5)
        subjects, labels = np.unique(slices.subject_ids, return_inverse=True)
        return ImageDataset(slices.images, labels, labels, tuple(str(s) for s in subjects), MRI_BUNDLED)
    return load_faces(data)


def downscaled(dataset: ImageDataset, factor: int) -> ImageDataset:
    """Average-pool every image by ``factor`` (1: unchanged)."""
    if factor == 1:
        return dataset
    pooled = torch.nn.functional.avg_pool2d(torch.as_tensor(dataset.images), factor).numpy()
    return ImageDataset(pooled, dataset.labels, dataset.subject_ids, dataset.class_names, f"{dataset.source} /{factor}")


def client_images(dataset: ImageDataset, count: int, seed: int) -> np.ndarray:
    """``count`` photos of different people where possible (one random photo of each)."""
    if count > len(dataset.images):
        raise MiriskError(f"asked for {count} client images; the data hold {len(dataset.images)}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(dataset.images))
    _, first = np.unique(dataset.labels[order], return_index=True)
    distinct = order[np.sort(first)]
    rest = np.setdiff1d(order, distinct, assume_unique=True)
    return np.concatenate([rng.permutation(distinct), rng.permutation(rest)])[:count]


def attack_and_measure(attack: GradientInversion, record: ServerRecord, data: ImageDataset, chosen: np.ndarray,
                       seed: int, progress: Callable[[int], None] | None = None,
                       ) -> tuple[AttackResult, dict[str, Any], np.ndarray]:
    """Attack a round whose client images were ``data.images[chosen]``: the attack's result,
    the metrics against the true images (re-identification among everyone's other
    images), and the reconstructions in the originals' order."""
    result = attack.run(record, generator=seeded(seed), progress=progress)
    gallery = np.setdiff1d(np.arange(len(data.images)), chosen)
    metrics, ordered = reconstruction_metrics(
        result.reconstructions.numpy(), data.images[chosen], data.labels[chosen], result.target_labels.numpy(),
        data.images[gallery],
        data.labels[gallery], data.labels[chosen], data.n_classes,
    )
    return result, metrics, ordered


@keeps_caller_generators
def run_gradient_attack(dataset: ImageDataset, setting: FederatedSetting,
                        progress: Callable[[int], None] | None = None) -> tuple[GradientAttackReport, ServerRecord]:
    """Simulate the round on freshly initialised weights (a round early in training, when
    leakage is largest), attack the record, and measure against the true batch."""
    prepare_torch(setting.seed)
    data = downscaled(dataset, setting.downscale)
    module = build_model(setting.architecture, data.input_shape, data.n_classes)
    chosen = client_images(data, setting.batch * setting.n_clients, setting.seed)
    images, labels = torch.as_tensor(data.images[chosen]), torch.as_tensor(data.labels[chosen])
    record = simulate_round(module, images, labels, setting.architecture, data.n_classes, setting.client,
                            setting.defence, setting.n_clients, setting.seed)
    attack = configured_attack(setting.attack, setting.iterations, setting.restarts)
    result, metrics, ordered = attack_and_measure(attack, record, data, chosen, setting.seed, progress)
    payload = {
        "attack": attack.name, "threat_model": THREAT_MODEL, "metrics": metrics, "seconds": result.seconds,
        "objective": float(result.final_cost[0]), "attack_settings": result.settings,
        "round": record.metadata(), "update_norm": record.update_norm(), "setting": {**asdict(setting), "client": asdict(setting.client),
                                                "defence": asdict(setting.defence)},
        "data": {"source": data.source, "images": chosen.tolist()}, "versions": versions(),
    }
    return GradientAttackReport(payload, ordered, data.images[chosen], data.labels[chosen]), record


def attack_captured_record(record: ServerRecord, attack_name: str, iterations: int, restarts: int, seed: int = 0,
                           progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Attack an update captured outside mirisk: reconstructions and recovered labels, with
    no originals to measure against."""
    attack = configured_attack(attack_name, iterations, restarts)
    result = attack.run(record, generator=seeded(seed), progress=progress)
    labels = result.target_labels.numpy()
    payload = {"attack": attack.name, "threat_model": THREAT_MODEL, "seconds": result.seconds,
               "objective": float(result.final_cost[0]), "recovered_labels": labels.tolist(),
               "attack_settings": result.settings, "round": record.metadata(), "versions": versions()}
    return {"payload": payload, "reconstructions": result.reconstructions.numpy(), "labels": labels}
