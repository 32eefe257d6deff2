"""The medical-imaging case study (Subbanna et al., Sensors 2021): in each fold a segmenter is
trained on the private subjects, the attacker's decoder on the other subjects, and every
reconstruction is matched back against all candidate subjects' real slices."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from mirisk.access.segmentation import OUTPUT_TYPES, SegmentationOracle
from mirisk.attacks.contract import seeded
from mirisk.attacks.decoder import DecoderInversion, DecoderSettings
from mirisk.data.mri import SliceDataset
from mirisk.errors import MiriskError
from mirisk.metrics.identification import chance, rank_of_true
from mirisk.metrics.intervals import wilson_interval
from mirisk.metrics.image import correlation_matrix, masked_ssim, ssim, ssim_matrix
from mirisk.models.segmentation import (
    ARCHITECTURES, SegmentationTarget, build_segmenter, check_divisible, mean_dice,
)
from mirisk.models.training import TrainingConfig, train_classifier
from mirisk.runtime import keeps_caller_generators, prepare_torch, versions
from mirisk.threats import AccessLevel, ThreatModel


@dataclass(frozen=True)
class SegmenterSettings:
    """The target's size and training. The default trains to convergence on few subjects,
    as a model fitted to a small private set is; ``regularised`` uses weight decay,
    dropout and fewer epochs."""

    width: int = 8
    depth: int = 3
    epochs: int = 150
    learning_rate: float = 3e-3
    batch_size: int = 4
    weight_decay: float = 0.0
    dropout: float = 0.0


REGULARISED_SEGMENTER = SegmenterSettings(epochs=60, weight_decay=1e-3, dropout=0.3)


@dataclass
class DecoderReport:
    """``payload`` for result.json, and the arrays for reconstructions.npz / .png."""

    payload: dict[str, Any]
    reconstructions: np.ndarray
    originals: np.ndarray
    subject_ids: np.ndarray
    ranks: np.ndarray


@keeps_caller_generators
def train_segmentation_target(architecture: str, data: SliceDataset, settings: SegmenterSettings,
                              seed: int = 0) -> SegmentationTarget:
    """A segmenter trained on every slice of ``data``."""
    prepare_torch(seed)
    module = build_segmenter(architecture, data.images.shape[1], data.n_classes, settings.width, settings.depth,
                             settings.dropout)
    check_divisible(data.images.shape, module.factor)
    config = TrainingConfig(epochs=settings.epochs, learning_rate=settings.learning_rate,
                            batch_size=settings.batch_size, weight_decay=settings.weight_decay, seed=seed)
    train_classifier(module, data.images, data.masks, config)
    target = SegmentationTarget(module, architecture, data.class_names, training=asdict(settings) | {"seed": seed})
    target.metrics["train_dice"] = mean_dice(target.logits(data.images).argmax(1).numpy(), data.masks, data.n_classes)
    return target


def train_private_segmenter(data: SliceDataset, source: dict[str, Any], n_private: int, architecture: str,
                            settings: SegmenterSettings, seed: int = 0) -> SegmentationTarget:
    """A segmenter trained on a seeded choice of ``n_private`` subjects of ``data``, scored
    by Dice on them and on the others. ``source`` (the arguments of ``load_mri``) and the
    training subjects are recorded, so an audit loads the same slices and knows whose scans
    the model learnt from."""
    if not 1 <= n_private < len(data.subjects):
        raise MiriskError(f"{n_private} private subjects requested; choose 1 to {len(data.subjects) - 1}, leaving "
                          f"others for the attacker and for re-identification")
    order = np.random.default_rng(seed).permutation(len(data.subjects))
    private_subjects = [data.subjects[i] for i in order[:n_private]]
    held_out = data.of_subjects([data.subjects[i] for i in order[n_private:]])
    target = train_segmentation_target(architecture, data.of_subjects(private_subjects), settings, seed)
    target.metrics["held_out_dice"] = mean_dice(target.logits(held_out.images).argmax(1).numpy(), held_out.masks,
                                                data.n_classes)
    target.data = {**source, "train_subjects": private_subjects}
    return target


def subject_similarity(reconstructions: np.ndarray, candidates: np.ndarray, slices: int) -> tuple[np.ndarray, np.ndarray]:
    """SSIM and pixel correlation between every private subject's reconstruction and every
    candidate subject's real slices, averaged over the slice positions: two [P, C] arrays."""
    recon = torch.as_tensor(reconstructions).reshape(-1, slices, *reconstructions.shape[1:])
    real = torch.as_tensor(candidates).reshape(-1, slices, *candidates.shape[1:])
    by_ssim = torch.stack([ssim_matrix(recon[:, s], real[:, s]) for s in range(slices)]).mean(0)
    by_correlation = torch.stack([correlation_matrix(recon[:, s], real[:, s]) for s in range(slices)]).mean(0)
    return by_ssim.numpy(), by_correlation.numpy()


@dataclass
class Inversion:
    """One decoder attack on one segmenter: its measurements (``row``), the reconstructions
    of the private slices, and each private subject's match rank by SSIM and by correlation.
    ``row["queries"]`` counts the scans the attacker sent; the private outputs it holds already."""

    row: dict[str, Any]
    reconstructions: np.ndarray
    ranks: np.ndarray


def invert_private_subjects(target: SegmentationTarget, private: SliceDataset, attacker: SliceDataset,
                            candidates: SliceDataset, output_type: str, decoder: DecoderSettings,
                            seed: int, neighbours: SliceDataset | str = "not given") -> Inversion:
    """Query the target with the attacker's scans, train the decoder on them, invert the
    private subjects' outputs, and match every reconstruction against all ``candidates``
    (which include the private subjects): by the same slice, and by a neighbouring slice of
    each candidate (``neighbours``, or why there is none), which is not the one reconstructed."""
    slices = candidates.slices_per_subject
    oracle = SegmentationOracle(target, output_type)
    observed = oracle.query(private.images)  # the outputs the attacker holds already
    result = DecoderInversion(attacker.images, decoder).run(oracle, observed, generator=seeded(seed))
    attacker_queries = result.queries_used
    reconstructions = result.reconstructions.numpy()
    by_ssim, by_correlation = subject_similarity(reconstructions, candidates.images, slices)
    candidate_ids = list(candidates.subjects)
    truth = np.array([candidate_ids.index(subject) for subject in private.subjects])
    ranks = np.stack([rank_of_true(by_ssim, truth), rank_of_true(by_correlation, truth)], axis=1)
    recon_t, original_t = torch.as_tensor(reconstructions), torch.as_tensor(private.images)
    own_ssim = ssim(recon_t, original_t).numpy()
    brain_ssim = masked_ssim(recon_t, original_t, torch.as_tensor(private.masks > 0)).numpy()
    row = {
        "private_subjects": len(private.subjects), "decoder_subjects": len(attacker.subjects),
        "ssim_mean": float(own_ssim.mean()), "ssim_brain_mean": float(brain_ssim.mean()),
        "reid_top1": float(np.mean(ranks[:, 0] == 1)), "reid_top5": float(np.mean(ranks[:, 0] <= 5)),
        "reid_correlation_top1": float(np.mean(ranks[:, 1] == 1)),
        "reid_top1_ci": list(wilson_interval(int(np.sum(ranks[:, 0] == 1)), len(ranks))),
        "queries": attacker_queries,
    }
    if isinstance(neighbours, str):
        row["reid_neighbour"] = {"available": False, "reason": neighbours}
    else:
        near = neighbours.of_subjects(list(candidates.subjects))
        neighbour_ranks = rank_of_true(subject_similarity(reconstructions, near.images, slices)[0], truth)
        hits = int(np.sum(neighbour_ranks == 1))
        row["reid_neighbour"] = {"available": True, "top1": hits / len(truth),
                                 "top1_ci": list(wilson_interval(hits, len(truth))),
                                 "top5": float(np.mean(neighbour_ranks <= 5)),
                                 "offset_voxels": int(near.slice_indices[0] - candidates.slice_indices[0])}
    return Inversion(row, reconstructions, ranks)


def fold_subjects(data: SliceDataset, n_subjects: int, folds: int, seed: int) -> tuple[list[str], list[list[str]]]:
    """The candidate subjects (a seeded choice of ``n_subjects``) and the private group of each fold."""
    if folds < 2:
        raise MiriskError("at least 2 folds are needed: the private and decoder subjects must differ")
    if n_subjects > len(data.subjects):
        raise MiriskError(f"{n_subjects} subjects requested; the data hold {len(data.subjects)}")
    if n_subjects < 2 * folds:
        raise MiriskError(f"{n_subjects} subjects are too few for {folds} folds (at least 2 per fold)")
    chosen = [data.subjects[i] for i in np.random.default_rng(seed).permutation(len(data.subjects))[:n_subjects]]
    return chosen, [list(group) for group in np.array_split(np.array(chosen), folds)]


@keeps_caller_generators
def decoder_protocol(
    data: SliceDataset,
    architecture: str = "unet",
    output_type: str = "probs",
    folds: int = 4,
    n_subjects: int = 40,
    segmenter: SegmenterSettings = SegmenterSettings(),
    decoder: DecoderSettings = DecoderSettings(),
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
    neighbours: SliceDataset | str = "not given",
) -> DecoderReport:
    """Run every fold; report SSIM to the own slice and re-identification among all
    candidates, by the same slice and by a neighbouring one (``neighbours``)."""
    if output_type not in OUTPUT_TYPES:
        raise MiriskError(f"unknown output type {output_type!r}; choose one of {', '.join(OUTPUT_TYPES)}")
    if architecture not in ARCHITECTURES:
        raise MiriskError(f"unknown segmentation architecture {architecture!r}; choose one of {', '.join(ARCHITECTURES)}")
    prepare_torch(seed)
    started = time.perf_counter()
    chosen, groups = fold_subjects(data, n_subjects, folds, seed)
    candidates = data.of_subjects(chosen)
    recon_parts, original_parts, id_parts, rank_parts, fold_rows = [], [], [], [], []
    for fold, private_subjects in enumerate(groups):
        attacker_subjects = [subject for subject in chosen if subject not in private_subjects]
        private, attacker = data.of_subjects(private_subjects), data.of_subjects(attacker_subjects)
        target = train_segmentation_target(architecture, private, segmenter, seed=seed + fold)
        held_out_dice = mean_dice(target.logits(attacker.images).argmax(1).numpy(), attacker.masks, data.n_classes)
        inversion = invert_private_subjects(target, private, attacker, candidates, output_type, decoder, seed + fold,
                                            neighbours)
        fold_rows.append({"fold": fold, "target_train_dice": target.metrics["train_dice"],
                          "target_held_out_dice": held_out_dice, **inversion.row})
        recon_parts.append(inversion.reconstructions)
        original_parts.append(private.images)
        id_parts.append(private.subject_ids)
        rank_parts.append(inversion.ranks)
        if progress is not None:
            progress(fold + 1)
    payload = _payload(fold_rows, data, architecture, output_type, folds, n_subjects, segmenter, decoder, seed)
    payload["seconds"] = time.perf_counter() - started
    return DecoderReport(payload, np.concatenate(recon_parts), np.concatenate(original_parts),
                         np.concatenate(id_parts), np.concatenate(rank_parts))


def _payload(rows: list[dict[str, Any]], data: SliceDataset, architecture: str, output_type: str, folds: int,
             n_subjects: int, segmenter: SegmenterSettings, decoder: DecoderSettings, seed: int) -> dict[str, Any]:
    def across(key: str) -> tuple[float, float]:
        values = [row[key] for row in rows]
        return float(np.mean(values)), float(np.std(values))

    ssim_mean, ssim_std = across("ssim_mean")
    brain_mean, brain_std = across("ssim_brain_mean")
    access = AccessLevel.LABEL_ONLY if output_type == "labels" else AccessLevel.SCORES
    knowledge = ("the private patients' segmentation outputs",
                 f"query access to the model with scans of {n_subjects - n_subjects // folds} other subjects "
                 "from the same population")
    return {
        "attack": "decoder",
        "threat_model": {**ThreatModel(access, knowledge).as_dict(), "output_type": output_type},
        "architecture": architecture,
        "metrics": {
            "ssim_mean": ssim_mean, "ssim_std": ssim_std,
            "ssim_brain_mean": brain_mean, "ssim_brain_std": brain_std,
            "reid_top1": across("reid_top1")[0], "reid_top1_std": across("reid_top1")[1],
            "reid_top5": across("reid_top5")[0],
            "reid_correlation_top1": across("reid_correlation_top1")[0],
            "reid_neighbour_top1": (float(np.mean([row["reid_neighbour"]["top1"] for row in rows]))
                                    if rows[0]["reid_neighbour"]["available"] else None),
            "reid_neighbour": rows[0]["reid_neighbour"] if not rows[0]["reid_neighbour"]["available"] else {
                "available": True, "offset_voxels": rows[0]["reid_neighbour"]["offset_voxels"]},
            "chance_top1": chance(n_subjects, 1), "chance_top5": chance(n_subjects, 5),
            "target_train_dice": across("target_train_dice")[0],
            "target_held_out_dice": across("target_held_out_dice")[0],
        },
        "per_fold": rows,
        "n_subjects": n_subjects,
        "folds": folds,
        "slices_per_subject": data.slices_per_subject,
        "classes": list(data.class_names),
        "data": data.source,
        "segmenter": asdict(segmenter),
        "decoder": asdict(decoder),
        "seed": seed,
        "versions": versions(),
    }
