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
error: a file that is not DICOM (or is cut short), an object without pixel data (a DICOMDIR,
a report), a header whose numbers cannot describe a slice (a side of 0 or over
``MAX_SIDE`` pixels, a sample size other than 8, 16 or 32 bits, a position or orientation
that is not 3 or 6 finite numbers, a rescale that is not finite or a slope of 0), pixel data
shorter or longer than the header declares, values that the rescale takes past float32,
two series for one subject, slices of different sizes or orientations, a gap in the
positions (missing slices), uneven spacing, and compressed pixel data without an installed
decoder. The header is checked before any pixel array is built.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mirisk.errors import MiriskError

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

# Positions closer than this (mm) are one position; spacing may vary by this share.
POSITION_TOLERANCE_MM = 1e-3
SPACING_TOLERANCE = 0.01
MAX_SIDE = 4096  # pixels per row or column: larger than any CT or MR slice
BITS_ALLOCATED = (8, 16, 32)


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
        raise MiriskError(f"{path} is a DICOM object without an image, or a file cut short (modality {modality}, SOP class "
                          f"{dataset.get('SOPClassUID', 'unknown')}); keep only the image series' files")
    for tag in ("PatientID", "SeriesInstanceUID", "ImagePositionPatient", "ImageOrientationPatient"):
        if not dataset.get(tag):
            raise MiriskError(f"{path} has no {tag}; mirisk groups slices by patient and series and stacks them "
                              "by position")
    if _header_number(path, dataset, "NumberOfFrames", 1) != 1:
        raise MiriskError(f"{path} is a multi-frame object; export the series as one file per slice")
    size = _image_size(path, dataset)
    orientation = _finite_numbers(path, dataset, "ImageOrientationPatient", 6)
    normal = np.cross(orientation[:3], orientation[3:])
    if not np.linalg.norm(normal) > 0.5:
        raise MiriskError(f"{path}: ImageOrientationPatient {list(orientation)} is not two unit directions at a "
                          "right angle")
    position = float(np.dot(_finite_numbers(path, dataset, "ImagePositionPatient", 3), normal))
    for tag, default in (("RescaleSlope", 1.0), ("RescaleIntercept", 0.0)):
        value = _header_number(path, dataset, tag, default)
        if not np.isfinite(value) or (tag == "RescaleSlope" and value == 0):
            raise MiriskError(f"{path}: {tag} is {value}; a rescale must be a finite number (a slope not 0)")
    return SeriesFile(path, str(dataset.PatientID), str(dataset.SeriesInstanceUID), position, orientation, size)


def _header_number(path: Path, dataset: Dataset, tag: str, default: float) -> float:
    """A numeric header value (``default`` when absent), or a one-line refusal."""
    value = dataset.get(tag, default)
    try:
        return float(default if value is None or value == "" else value)
    except (TypeError, ValueError):
        raise MiriskError(f"{path}: {tag} is {value!r}, not a number") from None


def _finite_numbers(path: Path, dataset: Dataset, tag: str, count: int) -> tuple[float, ...]:
    """A header's ``count`` finite numbers (a position or an orientation), or a one-line refusal."""
    raw = dataset.get(tag)
    values = [raw] if isinstance(raw, (str, bytes, int, float)) else list(raw)
    try:
        numbers = tuple(float(value) for value in values)
    except (TypeError, ValueError):
        raise MiriskError(f"{path}: {tag} is {values!r}; it needs {count} numbers") from None
    if len(numbers) != count or not all(np.isfinite(numbers)):
        raise MiriskError(f"{path}: {tag} is {list(numbers)}; it needs {count} finite numbers")
    return numbers


def _image_size(path: Path, dataset: Dataset) -> tuple[int, int]:
    """(Rows, Columns), each 1..MAX_SIDE, with a sample size a slice can have."""
    rows, columns = (_header_number(path, dataset, tag, 0) for tag in ("Rows", "Columns"))
    if not (1 <= rows <= MAX_SIDE and 1 <= columns <= MAX_SIDE):
        raise MiriskError(f"{path} declares a {rows:g} x {columns:g} slice; mirisk reads slices of 1 to {MAX_SIDE} "
                          "pixels a side")
    bits = _header_number(path, dataset, "BitsAllocated", 16)
    if bits not in BITS_ALLOCATED:
        raise MiriskError(f"{path} declares {bits:g} bits a pixel (BitsAllocated); DICOM images store 8, 16 or 32")
    return int(rows), int(columns)


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
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import apply_modality_lut

    try:
        dataset = pydicom.dcmread(path)
        pixel_data = dataset.get("PixelData")
    except (InvalidDicomError, OSError, EOFError, ValueError) as error:
        raise MiriskError(f"{path} is not a readable DICOM file: {error}") from None
    if pixel_data is None:
        raise MiriskError(f"{path} has no PixelData; the file was cut short or holds no image")
    syntax = dataset.file_meta.get("TransferSyntaxUID")
    if syntax is not None and not syntax.is_compressed:
        declared = (int(dataset.Rows) * int(dataset.Columns) * int(dataset.get("SamplesPerPixel", 1) or 1)
                    * int(dataset.get("BitsAllocated", 16)) // 8)
        if len(pixel_data) not in (declared, declared + 1):  # an odd length is padded to even
            raise MiriskError(f"{path} holds {len(pixel_data):,} bytes of pixel data where its header declares "
                              f"{declared:,}; the file is cut short or its header is wrong")
    try:
        pixels = dataset.pixel_array
    except (RuntimeError, NotImplementedError) as error:
        plugins = "; ".join(line.strip() for line in str(error).splitlines()[1:]) or str(error)
        name = syntax.name if syntax is not None else "unknown transfer syntax"
        raise MiriskError(f"{path} holds compressed pixel data ({name}) that no installed decoder reads; "
                          f"install one of: {plugins}") from None
    except (ValueError, AttributeError, TypeError) as error:
        raise MiriskError(f"{path}: its pixel data cannot be decoded as its header declares: {error}") from None
    if pixels.ndim != 2:
        raise MiriskError(f"{path} holds a {pixels.ndim}-D image ({pixels.shape}); greyscale slices are needed")
    with np.errstate(over="ignore", invalid="ignore"):  # an overflowing rescale is refused by read_series
        return np.asarray(apply_modality_lut(pixels, dataset), dtype=np.float64)


def read_series(slices: list[SeriesFile]) -> np.ndarray:
    """One subject's volume ``(rows, columns, slices)`` in modality units (float32)."""
    volume = np.stack([_pixels(item.path) for item in slices], axis=-1).astype(np.float32)
    if not np.isfinite(volume).all():
        raise MiriskError(f"subject {slices[0].patient_id}: the rescale (RescaleSlope, RescaleIntercept) takes "
                          "pixel values past the range of float32; the header is wrong")
    return volume


def read_dicom_volumes(root: str | Path) -> dict[str, np.ndarray]:
    """Every subject's volume under ``root``, by PatientID."""
    return {patient: read_series(slices) for patient, slices in sorted(group_series(Path(root)).items())}
