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

from mirisk.artifacts import npz_bytes
from mirisk.attacks.contract import seeded
from mirisk.audit.case import AuditSubject, NotRetrained, SubjectOptions, UnitResult, refuse_options, register_kind
from mirisk.audit.plan import AttackUnit, AuditPlan, seed_of, whole
from mirisk.audit.verdict import federated_attack_level, federated_recommendations
from mirisk.data.images import ImageDataset
from mirisk.errors import MiriskError
from mirisk.figures import reconstruction_grid
from mirisk.fl.record import ServerRecord
from mirisk.metrics.reidentification import RoundReconstruction
from mirisk.metrics.vulnerability import federated_vulnerability
from mirisk.models.imported import ImportSpec
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
    return fitted_replay_images(record, load_client_images(data), data)


def fitted_replay_images(record: ServerRecord, dataset: ImageDataset, data: str) -> ImageDataset:
    """``dataset`` (named ``data`` in errors) pooled to the record's input shape, refused
    when it cannot be, holds more people than the model's classes, or too few images."""
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
                      redact: bool) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Replay the round and measure the attack on it; replay it again under clipping and a
    little noise, when the round had none, and measure that; attack the captured update.
    The payload and the evidence files."""
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
    seconds = result.seconds
    if defence.noise == 0:
        checked = dataclasses.replace(defence, clip=defence.clip or replayed.update_norm(), noise=CHECKED_NOISE)
        noisy, _ = replay_round(record, data, checked, seed)
        noisy_result, noisy_metrics, _ = attack_and_measure(attack, noisy, data, chosen, seed)
        payload["defence_check"] = {"defence": checked.describe(), **_headline(noisy_metrics)}
        seconds += noisy_result.seconds
    captured = attack.run(record, generator=seeded(seed))
    captured_labels = captured.target_labels.numpy()
    payload["captured"] = {"recovered_labels": captured_labels.tolist(), "objective": float(captured.final_cost[0])}
    payload["seconds"] = seconds + captured.seconds
    if redact:
        return payload, {}
    titles = [f"{data.class_names[label]} ({value:.1f} dB)"
              for label, value in zip(data.labels[chosen], metrics["per_image"]["psnr"], strict=True)]
    return payload, {
        "reconstructions.png": reconstruction_grid(
            data.images[chosen], ordered, titles,
            heading=f"{unit.id}: the round replayed on stand-in images; top: the client's image, bottom: the "
                    "server's reconstruction"),
        "reconstructions.npz": npz_bytes(reconstructions=ordered, originals=data.images[chosen],
                                         labels=data.labels[chosen]),
        "captured.npz": npz_bytes(reconstructions=captured.reconstructions.numpy(), labels=captured_labels),
    }


class FederatedCase(NotRetrained):
    """A federated round as its server recorded it, replayed on stand-in client images."""

    name = "federated"
    title = "federated round"
    default_accesses = "white-box"
    config_keys = frozenset({"gradient_attacks", "gradient_iterations", "gradient_restarts"})
    deployable = False
    report_labels = {"records": "images", "person": "person", "judged": False, "at_risk": "stand-ins",
                     "dp_table": "none"}

    def claims(self, path: Path) -> bool:
        return path.is_dir() and (path / "record.json").is_file()

    def load_model(self, path: Path, spec: ImportSpec | None) -> ServerRecord:
        refuse_options(path, SubjectOptions(spec=spec), self.name)
        return ServerRecord.load(path)

    def load(self, model: str | Path, data: str | None, options: SubjectOptions) -> AuditSubject:
        refuse_options(model, options, self.name)
        record = ServerRecord.load(model)
        return AuditSubject(self.name, record, dataset=load_replay_images(record, data))

    def subject(self, record: ServerRecord, data: ImageDataset | str | None) -> AuditSubject:
        """The subject for a round's record in memory, replayed on stand-in images given as
        an ImageDataset or as ``--data`` takes them."""
        images = (fitted_replay_images(record, data, data.source) if isinstance(data, ImageDataset)
                  else load_replay_images(record, data))
        return AuditSubject(self.name, record, dataset=images)

    def describe(self, subject: AuditSubject) -> dict[str, Any]:
        record = subject.target
        return {"kind": self.title, "architecture": record.architecture, "protocol": record.protocol,
                "clients": record.n_clients, "images": record.n_images, "defence": record.defence,
                "metrics": {}, "data": {"source": subject.dataset.source, "role": "stand-in client images"}}

    def check_plan(self, plan: AuditPlan, subject: AuditSubject) -> None:
        """Nothing beyond what the plan checks already."""

    def plan_units(self, accesses, budget, config, gradients):
        if budget is not None:
            raise MiriskError("--budget caps black-box queries; the server of a federated round makes none (drop it)")
        if config.get("epsilons"):
            raise MiriskError("the audit retrains image classifiers and the IWPC model with DP-SGD, not federated "
                              "rounds; remove epsilons from the config (the round's update noise is checked instead)")
        settings = {
            "seed": seed_of(config),
            "gradient_attacks": [str(name) for name in config.get("gradient_attacks", ["inverting-gradients"])],
            "gradient_iterations": whole(config, "gradient_iterations", 1000),
            "gradient_restarts": whole(config, "gradient_restarts", 2),
            "epsilons": [],
        }
        for name in settings["gradient_attacks"]:
            configured_attack(name, settings["gradient_iterations"], settings["gradient_restarts"])
        units, skipped = [], {}
        for access in accesses:
            if access is not AccessLevel.WHITE_BOX:
                skipped[access.value] = ("a federated round hands the server the weights and the update, not query "
                                         "access; audit the trained model itself for this threat model")
                continue
            units += [AttackUnit(f"white-box-{name}", name, access, None,
                                 {"iterations": settings["gradient_iterations"],
                                  "restarts": settings["gradient_restarts"]})
                      for name in settings["gradient_attacks"]]
        return units, skipped, settings

    def run_unit(self, unit, settings, subject, redact):
        return run_gradient_unit(unit, settings, subject.target, subject.dataset, redact)

    def attack_level(self, metrics: dict[str, Any]) -> tuple[str, str]:
        return federated_attack_level(metrics)

    def attack_strength(self, metrics: dict[str, Any]) -> float:
        return RoundReconstruction.from_json(metrics).excess

    def headline(self, metrics: dict[str, Any]) -> dict[str, Any]:
        return RoundReconstruction.from_json(metrics).headline()

    def recommendations(self, plan, results, description, defences):
        return federated_recommendations(plan, results)

    def vulnerability(self, subject: AuditSubject) -> dict[str, Any]:
        return federated_vulnerability(subject.target)

    def at_risk(self, plan: AuditPlan, subject: AuditSubject, results: dict[str, UnitResult]) -> None:
        return None  # the replay's people are stand-ins

    def chart_series(self, schema: str) -> tuple[list[tuple[str, str, str]], str]:
        return [("reid_top1", "chance_top1", "re-identification top-1 of the replayed client images")], "chance"


register_kind(FederatedCase())
