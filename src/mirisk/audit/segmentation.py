"""Auditing a segmentation model: load the scans it was trained on, and run the decoder
inversion (Subbanna et al., Sensors 2021) as one audit unit per output type."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mirisk.artifacts import write_bytes, write_npz
from mirisk.attacks.decoder import DecoderSettings
from mirisk.audit.plan import AttackUnit
from mirisk.data.mri import BUNDLED, SliceDataset, load_mri
from mirisk.errors import MiriskError
from mirisk.execution.tasks import portable_path
from mirisk.figures import reconstruction_grid
from mirisk.metrics.identification import chance
from mirisk.models.segmentation import SegmentationTarget
from mirisk.pipelines.mri import invert_private_subjects
from mirisk.threats import ThreatModel


def segmentation_source(target: SegmentationTarget, data: str | None) -> dict[str, object]:
    """How to load the slices the segmenter was trained from (``load_mri``'s arguments), with
    ``data`` replacing the scans' source (the label maps stay those recorded)."""
    source = {key: value for key, value in target.data.items() if key != "train_subjects"}
    private = target.data.get("train_subjects")
    if not private or "images" not in source:
        raise MiriskError("this segmenter does not record its training subjects and data; train it with "
                          "`mirisk train segmenter` to audit it")
    if data is not None:
        if data != BUNDLED and not Path(data).is_dir():
            raise MiriskError(f"{data} is not a folder; a segmenter is audited on a folder of NIfTI scans or {BUNDLED}")
        if data != BUNDLED and source.get("labels") is None:
            raise MiriskError(f"this segmenter was trained on {BUNDLED}, whose label maps come with it; audit it on "
                              f"{BUNDLED} (or leave out --data)")
        source["images"] = portable_path(data)
        if data == BUNDLED:
            source["labels"] = None
    return source


def load_segmentation_data(target: SegmentationTarget, data: str | None) -> SliceDataset:
    """The slices the segmenter was trained from, loaded as recorded at training. Every
    training subject must be present: they are the patients the audit tries to re-identify."""
    private = target.data.get("train_subjects")
    slices = load_mri(**segmentation_source(target, data))
    missing = sorted(set(private) - set(slices.subjects))
    if missing:
        raise MiriskError(f"the data lack {len(missing)} of the model's training subjects ({', '.join(missing[:5])}"
                          f"{', ...' if len(missing) > 5 else ''}); audit it on the scans it was trained on")
    if len(slices.subjects) == len(private):
        raise MiriskError("the data hold only the model's training subjects; the attacker needs scans of others")
    return slices


def run_decoder_unit(unit: AttackUnit, settings: dict[str, Any], target: SegmentationTarget, data: SliceDataset,
                     folder: Path, redact: bool, neighbours: SliceDataset | str) -> dict[str, Any]:
    """Train the attacker's decoder on the scans of subjects outside the training set (as
    many as the query budget allows), invert the training subjects' outputs of the unit's
    type, and re-identify each among every subject in ``data``, by the same slice and by a
    neighbouring one (``neighbours``, or why there is none)."""
    started = time.perf_counter()
    private_ids = list(target.data["train_subjects"])
    others = [subject for subject in data.subjects if subject not in private_ids]
    if settings["decoder_subjects"] is not None:
        others = others[:settings["decoder_subjects"]]
    attacker = data.of_subjects(others)
    budget = unit.params.get("budget")
    if budget is not None:
        attacker = attacker.head(budget)
    private = data.of_subjects(private_ids)
    inversion = invert_private_subjects(target, private, attacker, data, unit.params["output"],
                                        DecoderSettings(epochs=unit.params["epochs"]), settings["seed"], neighbours)
    row = inversion.row
    knowledge = ("the training patients' segmentation outputs",
                 f"query access with {len(attacker.images)} scans of {len(attacker.subjects)} other subjects "
                 "from the same population")
    slices = data.slices_per_subject
    middle = slice(slices // 2, None, slices)
    payload = {
        "attack": "decoder",
        "threat_model": {**ThreatModel(unit.access, knowledge, budget).as_dict(), "output_type": unit.params["output"]},
        "metrics": {
            **{key: row[key] for key in ("ssim_mean", "ssim_brain_mean", "reid_top1", "reid_top5",
                                         "reid_correlation_top1", "reid_top1_ci", "reid_neighbour")},
            "chance_top1": chance(len(data.subjects), 1), "chance_top5": chance(len(data.subjects), 5),
            "per_target": {"subject": private_ids, "reid_rank": inversion.ranks[:, 0].tolist()},
        },
        "queries_used": row["queries"],
        "candidates": len(data.subjects),
        "seconds": time.perf_counter() - started,
    }
    if not redact:
        titles = [f"{subject}\nrank {rank}" for subject, rank in zip(private_ids, inversion.ranks[:, 0])]
        write_bytes(folder / "reconstructions.png", reconstruction_grid(
            private.images[middle], inversion.reconstructions[middle], titles, per_row=10,
            heading=f"{unit.id}: top: a training patient's scan; bottom: its reconstruction from the model's "
                    f"{unit.params['output']} (rank of the true patient among {len(data.subjects)})"))
        write_npz(folder / "reconstructions.npz", reconstructions=inversion.reconstructions,
                  subject_ids=private.subject_ids, ranks=inversion.ranks)
    return payload
