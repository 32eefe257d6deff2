"""DICOM series: a copy of bundled IXI slices reads back to the NIfTI originals' volumes,
pydicom's own shipped files read as they should, and every malformed series gets its
one-line error."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from mirisk.data.dicom import read_dicom_volumes
from mirisk.data.dicom_write import write_series
from mirisk.data.mri import load_bundled_slices, load_mri
from mirisk.errors import MiriskError

PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
SUBJECTS = ("IXI001-HH-1", "IXI002-HH-2", "IXI003-HH-3")


@pytest.fixture(scope="module")
def volumes() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(T1 volume [120, 120, 5] in 12-bit-like units, tissue map) of 3 bundled subjects."""
    bundled = load_bundled_slices(slices=5, groups="tissue")
    return {subject: (np.moveaxis(np.round(bundled.images[5 * i:5 * i + 5, 0] * 4000), 0, 2),
                      np.moveaxis(bundled.masks[5 * i:5 * i + 5], 0, 2).astype(np.uint8))
            for i, subject in enumerate(SUBJECTS)}


@pytest.fixture(scope="module")
def copies(volumes, tmp_path_factory) -> Path:
    """The same subjects as NIfTI files and as DICOM series (one sub-folder each)."""
    root = tmp_path_factory.mktemp("scans")
    for folder in ("nifti", "labels", "dicom"):
        (root / folder).mkdir()
    for subject, (volume, labels) in volumes.items():
        nib.save(nib.Nifti1Image(volume.astype(np.float32), np.eye(4)), root / "nifti" / f"{subject}_T1.nii.gz")
        nib.save(nib.Nifti1Image(labels, np.eye(4)), root / "labels" / f"{subject}_seg.nii.gz")
        write_series(volume, root / "dicom" / subject, subject)
    return root


def test_a_dicom_copy_reads_back_to_the_nifti_volumes_and_slices(copies, volumes):
    read = read_dicom_volumes(copies / "dicom")
    assert list(read) == list(SUBJECTS)
    for subject, (volume, _) in volumes.items():
        np.testing.assert_array_equal(read[subject], volume)  # integers: stored exactly
    from_dicom = load_mri(copies / "dicom", copies / "labels", centre=1, groups="tissue", axis=2)
    from_nifti = load_mri(copies / "nifti", copies / "labels", centre=1, groups="tissue", axis=2)
    for field in ("images", "masks", "subject_ids", "slice_indices"):
        np.testing.assert_array_equal(getattr(from_dicom, field), getattr(from_nifti, field))
    sideways = load_mri(copies / "dicom", copies / "labels", slices=1, axis=0, centre=60)
    np.testing.assert_array_equal(sideways.images, load_mri(copies / "nifti", copies / "labels", axis=0,
                                                            centre=60).images)


def test_real_valued_volumes_are_kept_to_the_stored_precision(tmp_path):
    volume = np.random.default_rng(0).normal(300.0, 80.0, (16, 12, 4))
    write_series(volume, tmp_path / "scan", "P1")
    read = read_dicom_volumes(tmp_path)["P1"]
    step = (volume.max() - volume.min()) / 65535
    assert np.abs(read - volume).max() <= step  # half a step of rounding, plus the slope's 10 digits


def test_any_tree_is_grouped_by_patient_and_slices_by_position_not_by_name(copies, volumes, tmp_path):
    shuffled = tmp_path / "export"
    for subject in SUBJECTS[:2]:
        for index, path in enumerate(sorted((copies / "dicom" / subject).iterdir())):
            target = shuffled / ("a" if index % 2 else "b") / f"{9 - index}_{subject}.dcm"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
    read = read_dicom_volumes(shuffled)
    assert list(read) == list(SUBJECTS[:2])
    np.testing.assert_array_equal(read[SUBJECTS[1]], volumes[SUBJECTS[1]][0])


def test_pydicoms_shipped_mr_slice_reads_with_its_rescale(tmp_path):
    shutil.copy(PYDICOM_FILES / "MR_small.dcm", tmp_path / "slice.dcm")
    dataset = pydicom.dcmread(PYDICOM_FILES / "MR_small.dcm")
    (volume,) = read_dicom_volumes(tmp_path).values()
    assert volume.shape == (dataset.Rows, dataset.Columns, 1)
    np.testing.assert_array_equal(volume[..., 0], dataset.pixel_array.astype(np.float32))
    assert list(read_dicom_volumes(tmp_path)) == [dataset.PatientID]  # named by PatientID, never PatientName


def _series(tmp_path: Path, volumes, subject=SUBJECTS[0]) -> Path:
    return write_series(volumes[subject][0], tmp_path / "dicom" / subject, subject)[0].parent


@pytest.mark.parametrize("damage, message", [
    ("second series", "has 2 series"),
    ("missing slice", "slices missing between positions"),
    ("uneven spacing", "inconsistent slice spacing"),
    ("duplicate slice", "two slices at position"),
    ("not dicom", "is not a readable DICOM file"),
    ("no pixels", "without an image"),
    ("compressed", "compressed pixel data (JPEG-LS Lossless Image Compression) that no installed decoder reads; "
                   "install one of:"),
    ("truncated file", "the file is cut short or its header is wrong"),
    ("truncated header", "or a file cut short"),
    ("short pixel data", "bytes of pixel data where its header declares"),
    ("no pixel data", "has no PixelData"),
    ("rows 65535", "declares a 65535 x 120 slice"),
    ("rows 0", "declares a 0 x 120 slice"),
    ("12 bits allocated", "declares 12 bits a pixel"),
    ("orientation of 3", "ImageOrientationPatient is [1.0, 0.0, 0.0]; it needs 6 finite numbers"),
    ("orientation not numeric", "ImageOrientationPatient is"),
    ("position nan", "ImagePositionPatient is [nan, nan, nan]; it needs 3 finite numbers"),
    ("slope 1e308", "takes pixel values past the range of float32"),
    ("intercept inf", "RescaleIntercept is inf"),
    ("slope nan", "RescaleSlope is nan"),
])
def test_malformed_series_get_one_line_errors(tmp_path, volumes, damage, message):
    folder = _series(tmp_path, volumes)
    slices = sorted(folder.iterdir())
    if damage == "second series":
        write_series(volumes[SUBJECTS[0]][0], tmp_path / "dicom" / "again", SUBJECTS[0])
    elif damage == "missing slice":
        slices[2].unlink()
    elif damage in ("uneven spacing", "duplicate slice"):
        dataset = pydicom.dcmread(slices[4])
        dataset.ImagePositionPatient = [0.0, 0.0, 3.5 if damage == "uneven spacing" else 3.0]
        dataset.save_as(slices[4])
    elif damage == "not dicom":
        (folder / "notes.txt").write_text("radiology notes")
    elif damage == "no pixels":
        shutil.copy(PYDICOM_FILES / "rtplan.dcm", folder / "plan.dcm")
    elif damage == "compressed":
        shutil.copy(PYDICOM_FILES / "MR_small_jpeg_ls_lossless.dcm", tmp_path / "dicom" / "lossless.dcm")
        shutil.rmtree(folder)
    elif damage.startswith("truncated"):
        slices[1].write_bytes(slices[1].read_bytes()[:2000 if damage == "truncated file" else 300])
    else:
        _damage_headers(slices, damage)
    with pytest.raises(MiriskError) as refused:
        read_dicom_volumes(tmp_path / "dicom")
    assert message in str(refused.value) and "\n" not in str(refused.value)


def _damage_headers(slices: list[Path], damage: str) -> None:
    """Change one header field (of one slice, or of all for a position), as a broken export would."""
    changed = slices if damage == "position nan" else slices[2:3]
    for path in changed:
        dataset = pydicom.dcmread(path)
        if damage == "short pixel data":
            dataset.PixelData = dataset.PixelData[:1000]
        elif damage == "no pixel data":
            del dataset.PixelData
        elif damage.startswith("rows"):
            dataset.Rows = int(damage.split()[1])
        elif damage == "12 bits allocated":
            dataset.BitsAllocated = 12
        elif damage == "orientation of 3":
            dataset.ImageOrientationPatient = [1, 0, 0]
        elif damage == "orientation not numeric":  # written as text: pydicom will not write it as numbers
            dataset.add_new("ImageOrientationPatient", "LO", ["a", "b", "c", "d", "e", "f"])
        elif damage == "position nan":
            dataset.add_new("ImagePositionPatient", "LO", ["nan"] * 3)
        else:
            tag, value = {"slope 1e308": ("RescaleSlope", "1e308"), "intercept inf": ("RescaleIntercept", "inf"),
                          "slope nan": ("RescaleSlope", "nan")}[damage]
            if value == "1e308":  # a valid decimal string
                dataset.RescaleSlope = value
            else:  # written as text: pydicom will not write a non-finite decimal string
                dataset.add_new(tag, "LO", value)
        dataset.save_as(path)
