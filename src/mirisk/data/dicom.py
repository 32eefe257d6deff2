"""DICOM series as volumes (pydicom), the way a radiology department exports scans.

A folder holds one sub-folder per subject, or any tree of files: files are grouped by
PatientID, and each subject must have exactly one series (SeriesInstanceUID). A series'
slices are stacked as ``(rows, columns, slices)``, ordered by their position along the
slice normal (ImagePositionPatient projected on the cross product of the two
ImageOrientationPatient directions), and rescaled by the modality LUT (RescaleSlope and
RescaleIntercept). A NIfTI volume written slice by slice along its third array axis
(:mod:`mirisk.data.dicom_write`) therefore reads back to the same array, and the same
``--axis`` names the same plane.

Subjects are named by PatientID, never by PatientName. Refused, each with a one-line
error: a file that is not DICOM, an object without pixel data (a DICOMDIR, a report), two
series for one subject, slices of different sizes or orientations, a gap in the positions
(missing slices), uneven spacing, and compressed pixel data without an installed decoder.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mirisk.errors import MiriskError

# Positions closer than this (mm) are one position; spacing may vary by this share.
POSITION_TOLERANCE_MM = 1e-3
SPACING_TOLERANCE = 0.01


@dataclass(frozen=True)
class SeriesFile:
    """One slice file's place in its series."""

    path: Path
    patient_id: str
    series_uid: str
    position: float
    orientation: tuple[float, ...]
    size: tuple[int, int]


def _header(path: Path) -> SeriesFile:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        dataset = pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, EOFError, ValueError) as error:
        raise MiriskError(f"{path} is not a readable DICOM file: {error}") from None
    modality = dataset.get("Modality", "unknown")
    if "Rows" not in dataset or "Columns" not in dataset:
        raise MiriskError(f"{path} is a DICOM object without an image (modality {modality}, SOP class "
                          f"{dataset.get('SOPClassUID', 'unknown')}); keep only the image series' files")
    for tag in ("PatientID", "SeriesInstanceUID", "ImagePositionPatient", "ImageOrientationPatient"):
        if not dataset.get(tag):
            raise MiriskError(f"{path} has no {tag}; mirisk groups slices by patient and series and stacks them "
                              "by position")
    if int(dataset.get("NumberOfFrames", 1) or 1) != 1:
        raise MiriskError(f"{path} is a multi-frame object; export the series as one file per slice")
    orientation = tuple(float(value) for value in dataset.ImageOrientationPatient)
    normal = np.cross(orientation[:3], orientation[3:])
    position = float(np.dot(np.asarray(dataset.ImagePositionPatient, dtype=float), normal))
    return SeriesFile(path, str(dataset.PatientID), str(dataset.SeriesInstanceUID), position, orientation,
                      (int(dataset.Rows), int(dataset.Columns)))


def _visible_files(root: Path) -> Iterator[Path]:
    return (path for path in root.rglob("*")
            if path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts))


def dicom_files(root: Path) -> list[Path]:
    """Every file under ``root`` (hidden files and folders left out), in path order."""
    return sorted(_visible_files(root))


def looks_like_dicom(root: Path) -> bool:
    """Whether ``root`` holds DICOM files (the 'DICM' marker after the 128-byte preamble),
    judged from its first files found (the tree is not walked whole)."""
    for path in itertools.islice(_visible_files(root), 20):
        with path.open("rb") as handle:
            if handle.read(132)[128:] == b"DICM":
                return True
    return False


def group_series(root: Path) -> dict[str, list[SeriesFile]]:
    """Slice files by PatientID, each subject's sorted along the slice normal."""
    if not root.is_dir():
        raise MiriskError(f"DICOM folder not found: {root}")
    subjects: dict[str, list[SeriesFile]] = {}
    for path in dicom_files(root):
        header = _header(path)
        subjects.setdefault(header.patient_id, []).append(header)
    if not subjects:
        raise MiriskError(f"no DICOM files in {root}")
    for patient, slices in subjects.items():
        series = sorted({item.series_uid for item in slices})
        if len(series) > 1:
            raise MiriskError(f"subject {patient} has {len(series)} series ({', '.join(series[:3])}); keep one "
                              "series per subject")
        slices.sort(key=lambda item: item.position)
        _check_geometry(patient, slices)
    return subjects


def _check_geometry(patient: str, slices: list[SeriesFile]) -> None:
    if len({item.size for item in slices}) > 1:
        raise MiriskError(f"subject {patient}: slices differ in size ({sorted({item.size for item in slices})})")
    if len({item.orientation for item in slices}) > 1:
        raise MiriskError(f"subject {patient}: slices differ in orientation (ImageOrientationPatient)")
    if len(slices) < 2:
        return
    gaps = np.diff([item.position for item in slices])
    if gaps.min() < POSITION_TOLERANCE_MM:
        duplicate = slices[int(np.argmin(gaps))]
        raise MiriskError(f"subject {patient}: two slices at position {duplicate.position:.3f} mm "
                          f"({duplicate.path.name}); the series holds a slice twice")
    spacing = float(np.median(gaps))
    uneven = np.abs(gaps - spacing) > SPACING_TOLERANCE * spacing
    if uneven.any():
        index = int(np.argmax(uneven))
        low, high = slices[index].position, slices[index + 1].position
        if np.isclose(gaps[index] / spacing, round(gaps[index] / spacing), rtol=SPACING_TOLERANCE):
            raise MiriskError(f"subject {patient}: slices missing between positions {low:.3f} and {high:.3f} mm "
                              f"(spacing {spacing:.3f} mm)")
        raise MiriskError(f"subject {patient}: inconsistent slice spacing ({gaps[index]:.3f} mm between "
                          f"{low:.3f} and {high:.3f}, against {spacing:.3f} mm elsewhere)")


def _pixels(path: Path) -> np.ndarray:
    import pydicom
    from pydicom.pixels import apply_modality_lut

    dataset = pydicom.dcmread(path)
    try:
        pixels = dataset.pixel_array
    except (RuntimeError, NotImplementedError) as error:
        syntax = dataset.file_meta.TransferSyntaxUID
        plugins = "; ".join(line.strip() for line in str(error).splitlines()[1:]) or str(error)
        raise MiriskError(f"{path} holds compressed pixel data ({syntax.name}) that no installed decoder reads; "
                          f"install one of: {plugins}") from None
    if pixels.ndim != 2:
        raise MiriskError(f"{path} holds a {pixels.ndim}-D image ({pixels.shape}); greyscale slices are needed")
    return np.asarray(apply_modality_lut(pixels, dataset), dtype=np.float64)


def read_series(slices: list[SeriesFile]) -> np.ndarray:
    """One subject's volume ``(rows, columns, slices)`` in modality units (float32)."""
    return np.stack([_pixels(item.path) for item in slices], axis=-1).astype(np.float32)


def read_dicom_volumes(root: str | Path) -> dict[str, np.ndarray]:
    """Every subject's volume under ``root``, by PatientID."""
    return {patient: read_series(slices) for patient, slices in sorted(group_series(Path(root)).items())}
