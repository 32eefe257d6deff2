"""Medical-imaging commands: invert brain-MRI segmentation models with a trained decoder."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from mirisk.artifacts import prepare_output_dir, write_bytes, write_json, write_npz
from mirisk.access.segmentation import OUTPUT_TYPES
from mirisk.attacks.decoder import DecoderSettings
from mirisk.cli.common import attack_app, console, friendly_errors, progress_bar, seed_option, train_app
from mirisk.data.mri import BUNDLED, LABEL_GROUPS, load_mri, load_neighbour_slices
from mirisk.errors import MiriskError
from mirisk.figures import reconstruction_grid
from mirisk.execution.tasks import portable_path
from mirisk.models.segmentation_store import save_segmenter
from mirisk.pipelines.mri import (
    REGULARISED_SEGMENTER, DecoderReport, SegmenterSettings, decoder_protocol, train_private_segmenter,
)


class SegmentationArchitecture(str, Enum):
    unet = "unet"
    segnet = "segnet"


ImagesOption = Annotated[str, typer.Option(help=f"Folder of NIfTI volumes <ID>_*.nii[.gz] or of DICOM series (by "
                                                 f"PatientID), or {BUNDLED}.")]
LabelsOption = Annotated[Path | None, typer.Option(help="Folder of label maps <ID>_*.nii[.gz] or DICOM series, "
                                                        "paired by subject id (it may hold more subjects).")]
SlicesOption = Annotated[int, typer.Option(help="Slices per subject around the middle of the axis.")]
GroupsOption = Annotated[str, typer.Option(help=f"Label grouping: {', '.join(LABEL_GROUPS)}.")]
AxisOption = Annotated[int, typer.Option(help="Slicing axis of the volumes (2: sagittal in IXI; DICOM: 2 is "
                                               "the series' own slices).")]
SliceIndexOption = Annotated[int | None, typer.Option(help="Centre slice on the axis (default: the middle).")]


@train_app.command("segmenter")
@friendly_errors
def train_segmenter(
    out: Annotated[Path, typer.Option(help="New folder for the model (model.safetensors + target.json).")],
    images: ImagesOption = BUNDLED,
    labels: LabelsOption = None,
    subjects: Annotated[int, typer.Option(help="Private subjects to train on (a seeded choice); the others stay "
                                               "unseen.")] = 10,
    arch: Annotated[SegmentationArchitecture, typer.Option(help="U-Net, or SegNet-like (no skips).")]
    = SegmentationArchitecture.unet,
    slices: SlicesOption = 1,
    groups: GroupsOption = "tissue",
    axis: AxisOption = 2,
    slice_index: SliceIndexOption = None,
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = SegmenterSettings().epochs,
    regularised: Annotated[bool, typer.Option(help="Weight decay, dropout and fewer epochs.")] = False,
    seed: Annotated[int, seed_option("Seed of the subject choice and training.")] = 0,
    force: Annotated[bool, typer.Option(help="Overwrite a non-empty output folder.")] = False,
) -> None:
    """Train a brain-MRI segmenter on a few private subjects and save it for `mirisk audit`."""
    out_dir = prepare_output_dir(out, force=force)
    if epochs < 1:
        raise MiriskError("--epochs must be at least 1")
    source = {"images": portable_path(images), "labels": portable_path(labels), "slices": slices, "groups": groups,
              "axis": axis, "centre": slice_index}
    data = load_mri(**source)
    settings = REGULARISED_SEGMENTER if regularised else SegmenterSettings(epochs=epochs)
    with console.status(f"training a {arch.value} on {subjects} subjects"):
        target = train_private_segmenter(data, source, subjects, arch.value, settings, seed)
    save_segmenter(target, out_dir, force=True)
    console.print(f"{arch.value}: Dice {target.metrics['train_dice']:.2f} on its {subjects} training subjects, "
                  f"{target.metrics['held_out_dice']:.2f} on the other {len(data.subjects) - subjects}")
    console.print(f"wrote {out_dir} (owner-only)")


@attack_app.command("decoder")
@friendly_errors
def attack_decoder(
    out: Annotated[Path, typer.Option(help="New folder for result.json and the reconstructions.")],
    images: ImagesOption = BUNDLED,
    labels: LabelsOption = None,
    folds: Annotated[int, typer.Option(help="Folds: each holds out its share of subjects as the private set.")] = 4,
    output_type: Annotated[str, typer.Option(help=f"What the model serves: {', '.join(OUTPUT_TYPES)}.")] = "probs",
    arch: Annotated[SegmentationArchitecture, typer.Option(help="Target: U-Net, or SegNet-like (no skips).")]
    = SegmentationArchitecture.unet,
    subjects: Annotated[int, typer.Option(help="Subjects taken part (the paper: 40 = 4 folds of 10 private).")] = 40,
    slices: SlicesOption = 1,
    groups: GroupsOption = "tissue",
    axis: AxisOption = 2,
    slice_index: SliceIndexOption = None,
    epochs: Annotated[int, typer.Option(help="Target training epochs.")] = SegmenterSettings().epochs,
    decoder_epochs: Annotated[int, typer.Option(help="Decoder training epochs.")] = DecoderSettings().epochs,
    regularised: Annotated[bool, typer.Option(help="Train the target with weight decay, dropout, fewer epochs.")] = False,
    seed: Annotated[int, seed_option("Seed of the subject choice, folds and training.")] = 0,
    force: Annotated[bool, typer.Option(help="Overwrite a non-empty output folder.")] = False,
) -> None:
    """Decoder inversion of segmentation models (Subbanna et al., Sensors 2021): reconstruct
    private patients' scans from the model's outputs and match them back to the patient."""
    out_dir = prepare_output_dir(out, force=force)
    if epochs < 1 or decoder_epochs < 1:
        raise MiriskError("--epochs and --decoder-epochs must be at least 1")
    source = {"images": None if images == BUNDLED else images, "labels": labels, "slices": slices, "groups": groups,
              "axis": axis, "centre": slice_index}
    data = load_mri(**source)
    segmenter = REGULARISED_SEGMENTER if regularised else SegmenterSettings(epochs=epochs)
    with progress_bar(f"decoder inversion of {arch.value} ({output_type}), fold", folds) as update:
        report = decoder_protocol(data, arch.value, output_type, folds, subjects, segmenter,
                                  DecoderSettings(epochs=decoder_epochs), seed, progress=update,
                                  neighbours=load_neighbour_slices(source))
    write_decoder_outputs(out_dir, report)
    console.print(decoder_table([report.payload]))
    console.print(f"wrote {out_dir}/result.json, reconstructions.png, reconstructions.npz (owner-only)")


def write_decoder_outputs(out_dir: Path, report: DecoderReport) -> None:
    """result.json; the reconstructions beside the originals with each subject's match rank
    (middle slice per subject); the raw arrays. Scans are personal data: owner-only."""
    write_json(out_dir / "result.json", report.payload)
    slices = report.payload["slices_per_subject"]
    middle = slice(slices // 2, None, slices)
    ids = report.subject_ids[middle]
    titles = [f"{subject}\nrank {rank}" for subject, rank in zip(ids, report.ranks[:, 0])]
    write_bytes(out_dir / "reconstructions.png", reconstruction_grid(
        report.originals[middle], report.reconstructions[middle], titles, per_row=10,
        heading=f"each private subject's scan (top) and its reconstruction from the model's "
                f"{report.payload['threat_model']['output_type']}; rank of the true subject among "
                f"{report.payload['n_subjects']} by SSIM",
    ))
    write_npz(out_dir / "reconstructions.npz", reconstructions=report.reconstructions, originals=report.originals,
              subject_ids=report.subject_ids, ranks=report.ranks)


def decoder_table(payloads: list[dict[str, Any]]) -> Table:
    """One row per protocol run: SSIM to the own scan and re-identification among all subjects."""
    table = Table(title="Decoder inversion: do the model's outputs give the patient's scan back?")
    for column in ("target", "served", "Dice train / held-out", "SSIM", "SSIM brain", "re-ID top-1", "re-ID top-5",
                   "re-ID, other slice", "seconds"):
        table.add_column(column, justify="right")
    for payload in payloads:
        metrics = payload["metrics"]
        table.add_row(
            payload["architecture"], payload["threat_model"]["output_type"],
            f"{metrics['target_train_dice']:.2f} / {metrics['target_held_out_dice']:.2f}",
            f"{metrics['ssim_mean']:.3f} ± {metrics['ssim_std']:.3f}", f"{metrics['ssim_brain_mean']:.3f}",
            f"{metrics['reid_top1']:.1%}", f"{metrics['reid_top5']:.1%}",
            "n/a" if metrics["reid_neighbour_top1"] is None else f"{metrics['reid_neighbour_top1']:.1%}",
            f"{payload['seconds']:.0f}",
        )
    first = payloads[0]
    table.caption = (f"{first['n_subjects']} subjects, {first['folds']} folds; chance: top-1 "
                     f"{first['metrics']['chance_top1']:.1%}, top-5 {first['metrics']['chance_top5']:.1%}; other slice: "
                     "matched against each candidate's neighbouring slice, not the one reconstructed")
    return table
