"""Auditing a federated round from what the server holds (a ``mirisk-fl-record/1`` folder).

A captured update has no ground truth to measure against, so the audit *replays* the
round: the same global weights, protocol, local schedule, number of images and clients
and update defence, on stand-in client images the organisation chooses (``--data``). The
gradient attack's success on the replay is the measured evidence; the captured update is
attacked too, and its reconstructions kept (owner-only) for inspection. Threat model:
the honest-but-curious server (white-box: it knows the weights it sent and the update it
received); attacks after Zhu et al. (DLG, NeurIPS 2019), Zhao et al. (iDLG, 2020) and
Geiping et al. (Inverting Gradients, NeurIPS 2020)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mirisk.artifacts import write_bytes, write_npz
from mirisk.audit.plan import AttackUnit
from mirisk.data.images import ImageDataset
from mirisk.errors import MiriskError
from mirisk.figures import reconstruction_grid
from mirisk.fl.record import ServerRecord
from mirisk.fl.simulation import ClientSettings, UpdateDefence, simulate_round
from mirisk.pipelines.federated import (
    THREAT_MODEL, attack_and_measure, client_images, configured_attack, downscaled, load_client_images,
)
from mirisk.threats import AccessLevel, ThreatModel

# The defence measured on the replay: each client clips its update at the update's own
# norm (so clipping alone changes nothing) and adds Gaussian noise of this multiplier;
# BENCHMARKS.md found 1e-4 stops iDLG and Inverting Gradients on one image.
CHECKED_NOISE = 1e-4


def load_replay_images(record: ServerRecord, data: str | None) -> ImageDataset:
    """The stand-in client images, pooled to the record's input shape; refused when they
    cannot be (a shape that is no whole multiple) or hold more people than the model's classes."""
    if data is None:
        raise MiriskError("a federated round is audited by replaying it on images like the clients' own: give --data "
                          "(a photo folder, bundled:att_faces or bundled:ixi_t1)")
    if Path(data).is_file():
        raise MiriskError(f"{data} is a file; a federated round is replayed on a folder of photos or bundled images")
    dataset = load_client_images(data)
    channels, height, width = record.input_shape
    factor = dataset.images.shape[-2] // height if height else 0
    if factor < 1 or downscaled(dataset, factor).input_shape != tuple(record.input_shape):
        raise MiriskError(f"the round's model takes {channels}x{height}x{width} images; {data} holds "
                          f"{'x'.join(map(str, dataset.input_shape))}, which no whole pooling factor turns into that")
    if dataset.n_classes > record.n_classes:
        raise MiriskError(f"{data} holds {dataset.n_classes} people; the round's model has only {record.n_classes} "
                          "classes")
    if record.n_images >= len(dataset.images):
        raise MiriskError(f"the round had {record.n_images} images; {data} holds only {len(dataset.images)}, too few "
                          "to replay it and keep others for re-identification")
    return downscaled(dataset, factor)


def recorded_defence(record: ServerRecord) -> UpdateDefence:
    """The update defence the record describes."""
    names = {field.name for field in dataclasses.fields(UpdateDefence)}
    return UpdateDefence(**{key: value for key, value in record.defence.items() if key in names})


def replay_round(record: ServerRecord, data: ImageDataset, defence: UpdateDefence,
                 seed: int) -> tuple[ServerRecord, np.ndarray]:
    """The record's round run again on ``record.n_images`` stand-in images (of different
    people where possible), from the record's own global weights; and which images."""
    chosen = client_images(data, record.n_images, seed)
    schedule = ClientSettings(record.protocol, record.local_steps,
                              record.local_learning_rate if record.protocol == "fedavg"
                              else ClientSettings().local_learning_rate, record.local_batch_size)
    replayed = simulate_round(record.module(), torch.as_tensor(data.images[chosen]),
                              torch.as_tensor(data.labels[chosen]), record.architecture, record.n_classes, schedule,
                              defence, record.n_clients, seed)
    return replayed, chosen


def _headline(metrics: dict[str, Any]) -> dict[str, Any]:
    return {"ssim_mean": metrics["ssim_mean"], "psnr_mean": metrics["psnr_mean"], "reid_top1": metrics["reid_top1"],
            "reid_top1_ci": metrics["reid_top1_ci"], "independent": metrics["independent"],
            "label_accuracy": metrics["label_accuracy"], "chance_top1": metrics["reid_chance"]}


def run_gradient_unit(unit: AttackUnit, settings: dict[str, Any], record: ServerRecord, data: ImageDataset,
                      folder: Path, redact: bool) -> dict[str, Any]:
    """Replay the round and measure the attack on it; replay it again under clipping and a
    little noise, when the round had none, and measure that; attack the captured update."""
    seed = settings["seed"]
    attack = configured_attack(unit.attack, unit.params["iterations"], unit.params["restarts"])
    defence = recorded_defence(record)
    replayed, chosen = replay_round(record, data, defence, seed)
    result, metrics, ordered = attack_and_measure(attack, replayed, data, chosen, seed)
    payload: dict[str, Any] = {
        "attack": attack.name,
        "threat_model": ThreatModel(AccessLevel.WHITE_BOX, (THREAT_MODEL,)).as_dict(),
        "metrics": {**_headline(metrics), "per_image": metrics["per_image"]},
        "round": record.metadata(), "update_norm": record.update_norm(), "replay_update_norm": replayed.update_norm(),
        "replay_images": {"source": data.source, "count": len(chosen)},
        "queries_used": None,
    }
    seconds = result["seconds"]
    if defence.noise == 0:
        checked = dataclasses.replace(defence, clip=defence.clip or replayed.update_norm(), noise=CHECKED_NOISE)
        noisy, _ = replay_round(record, data, checked, seed)
        noisy_result, noisy_metrics, _ = attack_and_measure(attack, noisy, data, chosen, seed)
        payload["defence_check"] = {"defence": checked.describe(), **_headline(noisy_metrics)}
        seconds += noisy_result["seconds"]
    captured = attack.run(record, seed=seed)
    payload["captured"] = {"recovered_labels": captured["labels"].tolist(), "objective": captured["objective"]}
    payload["seconds"] = seconds + captured["seconds"]
    if not redact:
        titles = [f"{data.class_names[label]} ({value:.1f} dB)"
                  for label, value in zip(data.labels[chosen], metrics["per_image"]["psnr"], strict=True)]
        write_bytes(folder / "reconstructions.png", reconstruction_grid(
            data.images[chosen], ordered, titles,
            heading=f"{unit.id}: the round replayed on stand-in images; top: the client's image, bottom: the "
                    "server's reconstruction"))
        write_npz(folder / "reconstructions.npz", reconstructions=ordered, originals=data.images[chosen],
                  labels=data.labels[chosen])
        write_npz(folder / "captured.npz", reconstructions=captured["reconstructions"], labels=captured["labels"])
    return payload
