"""Write a volume as a DICOM MR series (pydicom), one file per slice along its third array
axis, so that :func:`mirisk.data.dicom.read_dicom_volumes` reads back the same array.

Used to make DICOM copies of NIfTI data for tests and examples. Values are stored as
16-bit unsigned integers with a RescaleSlope and RescaleIntercept chosen to span the
volume's range, or as they are when the volume already holds integers in 0..65535 (then
the copy is exact). Files are written owner-only and atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mirisk.artifacts import make_private_dir, write_bytes
from mirisk.errors import MiriskError

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
UINT16_TOP = 65535


def storage_scale(volume: np.ndarray) -> tuple[float, float]:
    """(slope, intercept) that store ``volume`` in 0..65535: exact for integers in range."""
    low, high = float(volume.min()), float(volume.max())
    if np.array_equal(volume, np.round(volume)) and low >= 0 and high <= UINT16_TOP:
        return 1.0, 0.0
    return max(high - low, 1e-12) / UINT16_TOP, low


def write_series(volume: np.ndarray, folder: str | Path, patient_id: str, spacing: tuple[float, float, float]
                 = (1.0, 1.0, 1.0), description: str = "") -> list[Path]:
    """Write ``volume`` ``(rows, columns, slices)`` as one MR series in ``folder``; the
    paths written, in slice order."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    volume = np.asarray(volume, dtype=np.float64)
    if volume.ndim != 3 or not np.isfinite(volume).all():
        raise MiriskError(f"a DICOM series needs a finite 3-D volume, got shape {volume.shape}")
    folder = make_private_dir(Path(folder))
    slope, intercept = storage_scale(volume)
    stored = np.round((volume - intercept) / slope).clip(0, UINT16_TOP).astype(np.uint16)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    paths = []
    for index in range(volume.shape[2]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MR_IMAGE_STORAGE
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        slice_set = Dataset()
        slice_set.file_meta = meta
        slice_set.SOPClassUID, slice_set.SOPInstanceUID = MR_IMAGE_STORAGE, meta.MediaStorageSOPInstanceUID
        slice_set.Modality, slice_set.PatientID, slice_set.PatientName = "MR", patient_id, ""
        slice_set.StudyInstanceUID, slice_set.SeriesInstanceUID, slice_set.FrameOfReferenceUID = study, series, frame
        slice_set.SeriesDescription, slice_set.InstanceNumber = description, index + 1
        slice_set.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        slice_set.ImagePositionPatient = [0.0, 0.0, index * spacing[2]]
        slice_set.PixelSpacing, slice_set.SliceThickness = [spacing[0], spacing[1]], spacing[2]
        slice_set.Rows, slice_set.Columns = volume.shape[0], volume.shape[1]
        slice_set.SamplesPerPixel, slice_set.PhotometricInterpretation = 1, "MONOCHROME2"
        slice_set.BitsAllocated, slice_set.BitsStored, slice_set.HighBit, slice_set.PixelRepresentation = 16, 16, 15, 0
        slice_set.RescaleSlope, slice_set.RescaleIntercept = f"{slope:.10g}", f"{intercept:.10g}"
        slice_set.PixelData = np.ascontiguousarray(stored[:, :, index]).tobytes()
        buffer = DicomBytesIO()
        slice_set.save_as(buffer, enforce_file_format=True)
        paths.append(write_bytes(folder / f"slice{index:04d}.dcm", buffer.getvalue()))
    return paths
