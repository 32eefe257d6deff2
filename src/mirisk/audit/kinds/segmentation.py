"""Auditing a segmentation model: load the scans it was trained on, and run the decoder
inversion (Subbanna et al., Sensors 2021) as one audit unit per output type."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mirisk.artifacts import npz_bytes
from mirisk.attacks.decoder import DecoderSettings
from mirisk.audit.case import (
    AuditSubject, NotRetrained, SubjectOptions, UnitResult, recorded_format, refuse_options, register_kind,
)
from mirisk.audit.plan import AttackUnit, AuditPlan, seed_of, whole
from mirisk.audit.verdict import segmentation_attack_level, segmentation_recommendations
from mirisk.data.mri import BUNDLED, SliceDataset, load_mri, load_neighbour_slices
from mirisk.errors import MiriskError
from mirisk.execution.tasks import portable_path
from mirisk.figures import reconstruction_grid
from mirisk.metrics.identification import chance
from mirisk.metrics.reidentification import ScanReidentification
from mirisk.metrics.vulnerability import most_at_risk_people, segmentation_vulnerability
from mirisk.models.imported import ImportSpec
from mirisk.models.segmentation import SegmentationTarget, mean_dice
from mirisk.models.segmentation_import import is_manifest, load_manifest_segmenter
from mirisk.models.segmentation_store import FORMAT as SEGMENTER_FORMAT
from mirisk.models.segmentation_store import load_segmenter
from mirisk.pipelines.mri import invert_private_subjects
from mirisk.redaction import pseudonym
from mirisk.threats import AccessLevel, ThreatModel

# What a segmenter reveals at each access level: an attacker with the weights reads the
# logits; a served model gives per-pixel probabilities or a label map.
SEGMENTATION_OUTPUTS = {AccessLevel.WHITE_BOX: "logits", AccessLevel.SCORES: "probs", AccessLevel.LABEL_ONLY: "labels"}


def output_description(target: SegmentationTarget, output: str) -> str:
    """The output a unit attacks; a network whose file gives probabilities gives the white-box
    unit their logarithms, all that its file computes."""
    if output == "logits" and target.outputs == "probs":
        return "log-probabilities (the model file outputs probabilities, not logits)"
    return output


def load_any_segmenter(path: str | Path) -> SegmentationTarget:
    """A mirisk segmenter folder, or a manifest naming a segmentation network's file."""
    return load_manifest_segmenter(path) if is_manifest(Path(path)) else load_segmenter(path)


def with_dice(target: SegmentationTarget, slices: SliceDataset) -> SegmentationTarget:
    """An imported network's Dice on its training subjects and on the others, measured on
    the audit's scans (mirisk's own record theirs at training)."""
    if "train_dice" in target.metrics:
        return target
    private = set(target.data["train_subjects"])
    train = slices.of_subjects([subject for subject in slices.subjects if subject in private])
    others = slices.of_subjects([subject for subject in slices.subjects if subject not in private])
    for key, part in (("train_dice", train), ("held_out_dice", others)):
        target.metrics[key] = mean_dice(target.logits(part.images).argmax(1).numpy(), part.masks, slices.n_classes)
    return target


def segmentation_source(target: SegmentationTarget, data: str | None) -> dict[str, object]:
    """How to load the slices the segmenter was trained from (``load_mri``'s arguments), with
    ``data`` replacing the scans' source (the label maps stay those recorded)."""
    source = {key: value for key, value in target.data.items() if key != "train_subjects"}
    private = target.data.get("train_subjects")
    if not private or "images" not in source:
        raise MiriskError("this segmenter does not record its training subjects and data; train it with "
                          "`mirisk train segmenter`, or audit its file through a manifest (docs/own-models.md)")
    if data is not None:
        if data != BUNDLED and not Path(data).is_dir():
            raise MiriskError(f"{data} is not a folder; a segmenter is audited on a folder of NIfTI or DICOM scans "
                              f"or {BUNDLED}")
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
    slices = load_mri(**segmentation_source(target, data))
    check_holds_training_subjects(target, slices)
    return slices


def check_holds_training_subjects(target: SegmentationTarget, slices: SliceDataset) -> None:
    """Refuse slices that lack any of the model's training subjects (the patients the audit
    tries to re-identify), or hold no one else (the attacker needs scans of others)."""
    private = target.data.get("train_subjects")
    if not private:
        raise MiriskError("this segmenter does not record its training subjects; train it with "
                          "`mirisk train segmenter`, or audit its file through a manifest (docs/own-models.md)")
    missing = sorted(set(private) - set(slices.subjects))
    if missing:
        raise MiriskError(f"the data lack {len(missing)} of the model's training subjects ({', '.join(missing[:5])}"
                          f"{', ...' if len(missing) > 5 else ''}); audit it on the scans it was trained on")
    if len(slices.subjects) == len(private):
        raise MiriskError("the data hold only the model's training subjects; the attacker needs scans of others")


def run_decoder_unit(unit: AttackUnit, settings: dict[str, Any], target: SegmentationTarget, data: SliceDataset,
                     redact: bool, neighbours: SliceDataset | str) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Train the attacker's decoder on the scans of subjects outside the training set (as
    many as the query budget allows), invert the training subjects' outputs of the unit's
    type, and re-identify each among every subject in ``data``, by the same slice and by a
    neighbouring one (``neighbours``, or why there is none). The payload and the evidence files."""
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
        "threat_model": {**ThreatModel(unit.access, knowledge, budget).as_dict(),
                         "output_type": output_description(target, unit.params["output"])},
        "metrics": {
            **{key: row[key] for key in ("ssim_mean", "ssim_brain_mean", "reid_top1", "reid_top5",
                                         "reid_correlation_top1", "reid_top1_ci", "reid_neighbour")},
            "chance_top1": chance(len(data.subjects), 1), "chance_top5": chance(len(data.subjects), 5),
            "per_target": {"subject": [pseudonym(subject) for subject in private_ids] if redact else private_ids,
                           "reid_rank": inversion.ranks[:, 0].tolist()},
        },
        "queries_used": row["queries"],
        "candidates": len(data.subjects),
        "seconds": time.perf_counter() - started,
    }
    if redact:
        return payload, {}
    titles = [f"{subject}\nrank {rank}" for subject, rank in zip(private_ids, inversion.ranks[:, 0])]
    return payload, {
        "reconstructions.png": reconstruction_grid(
            private.images[middle], inversion.reconstructions[middle], titles, per_row=10,
            heading=f"{unit.id}: top: a training patient's scan; bottom: its reconstruction from the model's "
                    f"{unit.params['output']} (rank of the true patient among {len(data.subjects)})"),
        "reconstructions.npz": npz_bytes(reconstructions=inversion.reconstructions, subject_ids=private.subject_ids,
                                         ranks=inversion.ranks),
    }


class SegmentationCase(NotRetrained):
    """A segmentation model, the scans of its training patients and of others."""

    name = "segmentation"
    title = "segmentation model"
    default_accesses = "white-box,scores,top-k,label-only"
    config_keys = frozenset({"decoder_epochs", "decoder_subjects"})
    deployable = False
    report_labels = {"records": "scans", "person": "patient", "judged": False, "at_risk": "people",
                     "dp_table": "none"}

    def claims(self, path: Path) -> bool:
        return recorded_format(path) == SEGMENTER_FORMAT or is_manifest(path)

    def load_model(self, path: Path, spec: ImportSpec | None) -> SegmentationTarget:
        refuse_options(path, SubjectOptions(spec=spec), self.name)
        return load_any_segmenter(path)

    def load(self, model: str | Path, data: str | None, options: SubjectOptions) -> AuditSubject:
        refuse_options(model, options, self.name)
        target = load_any_segmenter(model)
        slices = load_segmentation_data(target, data)
        return AuditSubject(self.name, with_dice(target, slices), slices=slices,
                            neighbour_slices=load_neighbour_slices(segmentation_source(target, data)))

    def subject(self, target: SegmentationTarget, slices: SliceDataset | None) -> AuditSubject:
        """The subject for a segmenter in memory: on ``slices`` handed in (checked to hold
        its training subjects and others; no neighbouring slices are known for them, and the
        report says so), or on the slices it records (None), as from its folder."""
        if slices is None:
            slices = load_segmentation_data(target, None)
            neighbours: SliceDataset | str = load_neighbour_slices(segmentation_source(target, None))
        else:
            check_holds_training_subjects(target, slices)
            neighbours = "the slices were handed in memory, without their neighbouring slices"
        return AuditSubject(self.name, with_dice(target, slices), slices=slices, neighbour_slices=neighbours)

    def describe(self, subject: AuditSubject) -> dict[str, Any]:
        target, slices = subject.target, subject.slices
        return {"kind": self.title, "architecture": target.architecture, "classes": list(target.class_names),
                "metrics": target.metrics, **({"provenance": target.provenance} if target.provenance else {}),
                "data": {"source": slices.source, "subjects": len(slices.subjects),
                         "training_subjects": len(target.data["train_subjects"]),
                         "slices_per_subject": slices.slices_per_subject}}

    def check_plan(self, plan: AuditPlan, subject: AuditSubject) -> None:
        """Nothing beyond what the plan checks already."""

    def plan_units(self, accesses, budget, config, gradients):
        settings = {
            "seed": seed_of(config),
            "decoder_epochs": whole(config, "decoder_epochs", DecoderSettings().epochs),
            "decoder_subjects": None if config.get("decoder_subjects") is None else whole(config, "decoder_subjects", 1),
            "epsilons": [],
        }
        if config.get("epsilons"):
            raise MiriskError("the audit retrains image classifiers and the IWPC model with DP-SGD, not segmenters; "
                              "remove epsilons from the config")
        units, skipped = [], {}
        for access in accesses:
            output = SEGMENTATION_OUTPUTS.get(access)
            if output is None:
                skipped[access.value] = ("a segmenter answers every pixel; mirisk serves per-pixel probabilities "
                                         "(scores) or label maps (label-only), not a per-pixel top-k")
                continue
            units.append(AttackUnit(f"{access.value}-decoder", "decoder", access,
                                    None if access is AccessLevel.WHITE_BOX else output,
                                    {"output": output, "epochs": settings["decoder_epochs"], "budget": budget}))
        return units, skipped, settings

    def run_unit(self, unit, settings, subject, redact):
        return run_decoder_unit(unit, settings, subject.target, subject.slices, redact, subject.neighbour_slices)

    def attack_level(self, metrics: dict[str, Any]) -> tuple[str, str]:
        return segmentation_attack_level(metrics)

    def attack_strength(self, metrics: dict[str, Any]) -> float:
        return ScanReidentification.from_json(metrics).excess

    def headline(self, metrics: dict[str, Any]) -> dict[str, Any]:
        return ScanReidentification.from_json(metrics).headline()

    def recommendations(self, plan, results, description, defences):
        return segmentation_recommendations(plan, results)

    def vulnerability(self, subject: AuditSubject) -> dict[str, Any]:
        return segmentation_vulnerability(subject.target, subject.slices)

    def at_risk(self, plan: AuditPlan, subject: AuditSubject, results: dict[str, UnitResult]) -> Any:
        return most_at_risk_people({key: result.payload for key, result in results.items()},
                                   tuple(subject.target.data["train_subjects"]), rank_key="reid_rank")

    def chart_series(self, schema: str) -> tuple[list[tuple[str, str, str]], str]:
        return [("reid_top1", "chance_top1", "re-identification top-1 of the training patients")], "chance"


register_kind(SegmentationCase())
