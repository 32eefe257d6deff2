"""Face targets end to end: train on a per-person split, invert with MI-Face, measure."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import TensorDataset

from mirisk.access.whitebox import WhiteBoxAccess
from mirisk.artifacts import write_bytes, write_json, write_npz
from mirisk.attacks.miface import MIFace
from mirisk.attacks.result import AttackResult
from mirisk.data.images import ImageDataset
from mirisk.data.split import SubjectSplit, split_per_subject
from mirisk.defences import EarlyStopping, TrainingDefences, train_dp_sgd
from mirisk.figures import lineup_grid, reconstruction_grid
from mirisk.metrics.face_judge import face_judge
from mirisk.metrics.identification import (
    BaselineIdentification,
    FaceEvaluator,
    ImageIdentification,
    PixelEvaluator,
    identification_metrics,
    judge_identification,
)
from mirisk.models.architectures import build_model
from mirisk.models.loading import target_split
from mirisk.models.target import TargetModel
from mirisk.models.training import (
    DEFAULT_TRAINING, DP_GRAD_SAMPLE_MODE, DP_MOMENTUM, DP_TRAINING, TrainingConfig, accuracy, train_classifier,
)
from mirisk.runtime import keeps_caller_generators, prepare_torch, versions


@keeps_caller_generators
def train_face_target(
    architecture: str,
    dataset: ImageDataset,
    n_train: int = 7,
    split_seed: int = 0,
    config: TrainingConfig | None = None,
    progress: Callable[[int], None] | None = None,
    defences: TrainingDefences | None = None,
) -> TargetModel:
    """Train one face recogniser on ``n_train`` photos per person, with ``defences`` if any;
    record its accuracy. ``progress(epoch)`` is called after each epoch."""
    defences = defences or TrainingDefences()
    split = split_per_subject(dataset, n_train=n_train, seed=split_seed)
    config = config or default_training(architecture, private=defences.dp is not None)
    prepare_torch(config.seed)  # the initial weights come from the seed too
    params = {"dropout": defences.dropout} if defences.dropout else {}
    module = build_model(architecture, dataset.input_shape, dataset.n_classes, **params)
    train, held_out = dataset.subset(split.train), dataset.subset(split.held_out)
    training: dict[str, Any] = {"loss": "cross-entropy", **config.as_dict(), **defences.as_dict()}
    if defences.dp is not None:
        training["optimiser"] = f"sgd (momentum {DP_MOMENTUM})"
        training["dp"] = train_dp_sgd(
            module, TensorDataset(torch.as_tensor(train.images), torch.as_tensor(train.labels)), defences.loss,
            defences.dp, epochs=config.epochs, batch_size=config.batch_size, learning_rate=config.learning_rate,
            seed=config.seed, momentum=DP_MOMENTUM, weight_decay=config.weight_decay + defences.weight_decay,
            grad_sample_mode=DP_GRAD_SAMPLE_MODE.get(architecture, "hooks"),
            on_epoch=None if progress is None else lambda epoch: progress(epoch + 1),
        )
    else:
        training["optimiser"] = "adam"
        training["epochs_run"] = _train_plain(module, train, config, defences, split_seed, progress)
    return TargetModel(
        module=module,
        architecture=architecture,
        input_shape=dataset.input_shape,
        class_names=dataset.class_names,
        architecture_params=params,
        training=training,
        metrics={
            "train_accuracy": accuracy(module, train.images, train.labels),
            "test_accuracy": accuracy(module, held_out.images, held_out.labels),
        },
        data={
            "source": dataset.source,
            "fingerprint": dataset.fingerprint(),
            "split_seed": split_seed,
            "n_train_per_subject": n_train,
        },
    )


def _train_plain(module: torch.nn.Module, train: ImageDataset, config: TrainingConfig, defences: TrainingDefences,
                 seed: int, progress: Callable[[int], None] | None) -> int:
    """Adam with the recipe's loss and weight decay; with early stopping, one photo per
    person is held back for validation and the best epoch's weights are kept. Returns the
    epochs run."""
    config = replace(config, weight_decay=config.weight_decay + defences.weight_decay)
    if defences.early_stopping is None:
        train_classifier(module, train.images, train.labels, config, progress=progress, loss_fn=defences.loss)
        return config.epochs
    order = np.random.default_rng(seed).permutation(len(train.labels))
    _, first = np.unique(train.labels[order], return_index=True)
    validation = np.zeros(len(train.labels), dtype=bool)
    validation[order[first]] = True
    stopper = EarlyStopping(train.images[validation], train.labels[validation], defences.early_stopping)
    train_classifier(module, train.images[~validation], train.labels[~validation], config, progress=progress,
                     loss_fn=defences.loss, should_stop=stopper.should_stop)
    stopper.restore_best(module)
    return stopper.last_epoch


@dataclass(frozen=True)
class BaselineUnavailable:
    """Why no label-permuted twin could be trained (verdicts then compare with chance)."""

    reason: str


@dataclass
class FaceInversionReport:
    """The attack's output and every number measured on it, ready to be written."""

    result: AttackResult
    identification: ImageIdentification
    payload: dict[str, Any]
    originals: np.ndarray
    lineup_photos: np.ndarray  # one held-out photo per person, the faces a lineup shows

    @property
    def metrics(self) -> dict[str, Any]:
        """The identification as result.json holds it."""
        return self.payload["metrics"]

    def lineup_png(self, class_names: tuple[str, ...], heading: str) -> bytes:
        """Each reconstruction beside the judge's five nearest people, the true one framed."""
        lineups = np.array(self.identification.judge.lineups)
        labels = np.array(self.identification.labels)
        names = [[class_names[c] for c in row] for row in lineups]
        return lineup_grid(self.result.reconstructions.numpy(), self.lineup_photos[lineups],
                           lineups == labels[:, None], names, [class_names[c] for c in labels], heading=heading)


def invert_faces(
    target: TargetModel,
    dataset: ImageDataset,
    attack: MIFace,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> FaceInversionReport:
    """Run MI-Face on every person the target knows, then measure the reconstructions."""
    target_split(target, dataset)  # refuse mismatched data before a long attack
    result = attack.run(WhiteBoxAccess(target), torch.arange(target.n_classes), progress=progress)
    return measure_face_reconstructions(target, dataset, result, seed=seed)


@dataclass(frozen=True)
class FaceGallery:
    """What every measurement of one target on one data set shares: the training split, the
    pixel evaluator fitted on the held-out photos and its accuracy on the training photos.
    Build it once (:func:`face_gallery`) and pass it to every measurement of an audit."""

    split: SubjectSplit
    evaluator: FaceEvaluator
    training_accuracy: float


GALLERIES_KEPT = 4  # galleries kept per process, by content
_galleries: OrderedDict[bytes, FaceGallery] = OrderedDict()


def face_gallery(target: TargetModel, dataset: ImageDataset, seed: int = 0) -> FaceGallery:
    """The split of ``target`` on ``dataset`` and the pixel evaluator fitted on its held-out
    photos. The last few are kept by content (a digest of the photos, labels, split and
    seed, never a name), so an audit and its DP-SGD retrains, which share one split, fit
    the evaluator once per process."""
    split = target_split(target, dataset)
    key = _gallery_key(dataset, split, seed)
    if key in _galleries:
        _galleries.move_to_end(key)
        return _galleries[key]
    train, held_out = dataset.subset(split.train), dataset.subset(split.held_out)
    evaluator = FaceEvaluator(seed=seed).fit(held_out.images, held_out.labels)
    gallery = _galleries[key] = FaceGallery(split, evaluator, evaluator.accuracy(train.images, train.labels))
    while len(_galleries) > GALLERIES_KEPT:
        _galleries.popitem(last=False)
    return gallery


def _gallery_key(dataset: ImageDataset, split: SubjectSplit, seed: int) -> bytes:
    digest = hashlib.blake2b(str(seed).encode())
    for array in (dataset.images, dataset.labels, split.train, split.held_out):
        digest.update(str((array.dtype, array.shape)).encode())
        digest.update(np.ascontiguousarray(array).data)
    return digest.digest()


def face_identification(target: TargetModel, dataset: ImageDataset, reconstructions: np.ndarray,
                        labels: np.ndarray, seed: int = 0, gallery: FaceGallery | None = None) -> ImageIdentification:
    """Every identification number for ``reconstructions`` of the people ``labels``: the
    independent judge and the pixel evaluator, both against held-out photos, re-identification
    from the photos an attacker could hold, and similarity to the training photos."""
    gallery = gallery or face_gallery(target, dataset, seed)
    split = gallery.split
    unknown = target.data.get("split") == "unknown"
    held_out = dataset.subset(split.held_out)
    in_training = np.zeros(len(dataset.images), dtype=bool)
    in_training[split.train] = True
    attacker_photos = np.ones(len(dataset.images), dtype=bool) if unknown else ~in_training
    gallery_name = ("all photos (the model's training split is unknown)" if unknown
                    else "held-out photos only (what an attacker could hold)")
    judge = face_judge()
    judged = judge_identification(judge.embed(reconstructions), labels, judge.embed(held_out.images),
                                  held_out.labels, dataset.n_classes, gallery_name)
    identification = identification_metrics(reconstructions, labels, gallery.evaluator, dataset.images,
                                            dataset.labels, in_training, dataset.n_classes, judged,
                                            attacker_photos=attacker_photos)
    return replace(identification, evaluator=PixelEvaluator(
        model="eigenfaces: per-image standardisation, PCA (whitened), logistic regression",
        role="pixel-space evaluator (same pixel space as the attacks; can be fooled)",
        trained_on=gallery_name, accuracy_on_training_photos=gallery.training_accuracy))


def attacked_people(count: int | None, n_classes: int, seed: int) -> torch.Tensor:
    """The classes an attack reconstructs: all of them (``count`` None), or a seeded sample of
    ``count`` in ascending order (a model of many people is audited on a sample; each rate
    is then over the sample, with its interval, and chance stays 1 / ``n_classes``)."""
    if count is None or count >= n_classes:
        return torch.arange(n_classes)
    chosen = np.random.default_rng(seed).choice(n_classes, size=count, replace=False)
    return torch.as_tensor(np.sort(chosen))


def baseline_metrics(target: TargetModel, dataset: ImageDataset, baseline: AttackResult | BaselineUnavailable | None,
                     seed: int = 0, gallery: FaceGallery | None = None) -> BaselineIdentification:
    """The label-permuted baseline's headline numbers, scored like the target's."""
    if baseline is None:
        return BaselineIdentification(False, reason="not run (--no-baseline); verdicts compare with chance")
    if isinstance(baseline, BaselineUnavailable):
        return BaselineIdentification(False, reason=baseline.reason)
    twin = face_identification(target, dataset, baseline.reconstructions.numpy(), baseline.target_labels.numpy(),
                               seed=seed, gallery=gallery)
    return BaselineIdentification(
        True, kind="label-permuted twin (same family, recipe and photos; seeded derangement)",
        pixel_top1=twin.pixel_top1, reid_top1=twin.reid_top1, reid_top1_ci=twin.reid_top1_ci,
        judge_top1=twin.judge.identification_top1, judge_top1_ci=twin.judge.identification_top1_ci,
        judge_top5=twin.judge.identification_top5, face_rate=twin.judge.face_rate)


def measure_face_reconstructions(
    target: TargetModel, dataset: ImageDataset, result: AttackResult, seed: int = 0,
    baseline: AttackResult | BaselineUnavailable | None = None, gallery: FaceGallery | None = None,
) -> FaceInversionReport:
    """Identification of every reconstruction by the independent judge and the pixel
    evaluator, re-identification among all people, similarity to the training photos, and
    the same numbers for the label-permuted ``baseline`` (None: not run). ``gallery``: the
    shared split and evaluator (built here when not given)."""
    gallery = gallery or face_gallery(target, dataset, seed)
    split = gallery.split
    train = dataset.subset(split.train)
    reconstructions = result.reconstructions.numpy()
    labels = result.target_labels.numpy()
    identification = replace(face_identification(target, dataset, reconstructions, labels, seed=seed, gallery=gallery),
                             baseline=baseline_metrics(target, dataset, baseline, seed=seed, gallery=gallery))
    first_photo = np.array([np.flatnonzero(train.labels == label)[0] for label in labels])
    summary = result.summary()
    payload = {
        "attack": result.attack,
        "threat_model": summary["threat_model"],
        "metrics": identification.to_json(),
        "n_targets": summary["n_targets"],
        "seconds": summary["seconds"],
        "iterations": result.settings["iterations"],
        "iterations_used": summary["iterations"],
        "stop_reasons": summary["stop_reasons"],
        "final_cost_mean": summary["final_cost_mean"],
        "settings": summary["settings"],
        "seed": seed,
        "model": {"architecture": target.architecture, **target.metrics},
        "data": {"source": dataset.source, **{k: v for k, v in target.data.items() if k != "source"}},
        "versions": versions(),
    }
    if result.queries_used is not None:
        payload.update(
            queries_used=result.queries_used,
            queries_per_target=result.queries_used / len(labels),
            budget=result.threat_model.query_budget,
            policy=result.settings.get("policy"),
            budget_limited="budget" in result.stop_reasons,
        )
    gallery = dataset.subset(split.held_out)
    lineup_photos = np.stack([gallery.images[np.flatnonzero(gallery.labels == c)[0]] for c in range(dataset.n_classes)])
    return FaceInversionReport(result, identification, payload, train.images[first_photo], lineup_photos)


def default_training(architecture: str, private: bool = False) -> TrainingConfig:
    """The family's default training settings (DP-SGD's own when ``private``)."""
    table = DP_TRAINING if private else DEFAULT_TRAINING
    return table.get(architecture, TrainingConfig())


def configured_miface(**overrides: Any) -> MIFace:
    """mirisk's default MI-Face settings (see README), with the caller's overrides."""
    return replace(DEFAULT_MIFACE, **{k: v for k, v in overrides.items() if v is not None})


DEFAULT_MIFACE = MIFace(iterations=1000, patience=100, cost_threshold=0.01, learning_rate=1.0)


LINEUP_HEADING = ("each reconstruction (left) beside the 5 people the independent judge ranks nearest, "
                  "nearest first; the true person in red")


def write_inversion_outputs(out_dir: Path, report: FaceInversionReport, class_names: tuple[str, ...]) -> list[Path]:
    """``result.json``, ``reconstructions.png``, ``lineup.png`` and ``reconstructions.npz`` (owner-only)."""
    labels = report.result.target_labels.numpy()
    ranks = report.identification.judge.ranks
    titles = [f"{class_names[label]} (judge rank {rank})" for label, rank in zip(labels, ranks, strict=True)]
    heading = (
        f"{report.payload['attack']} on {report.payload['model']['architecture']}: top: a training photo; bottom: reconstruction "
        f"(rank = the independent judge's rank of the true person)"
    )
    png = reconstruction_grid(report.originals, report.result.reconstructions.numpy(), titles, heading=heading)
    lineup = report.lineup_png(class_names, LINEUP_HEADING)
    return [
        write_json(out_dir / "result.json", report.payload),
        write_bytes(out_dir / "reconstructions.png", png),
        write_bytes(out_dir / "lineup.png", lineup),
        write_npz(
            out_dir / "reconstructions.npz",
            reconstructions=report.result.reconstructions.numpy(),
            labels=labels,
            class_names=np.array(class_names),
        ),
    ]
