"""MRI slices: the bundled IXI copy, NIfTI folder pairing, grouping, and the loader's errors."""

import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from mirisk.data.mri import (
    LABEL_GROUPS, group_labels, load_bundled_slices, load_mri, load_neighbour_slices, load_nifti_folders, normalise_volume,
    slice_positions,
)
from mirisk.errors import MiriskError

SHARED_IXI = Path(__file__).resolve().parents[3] / "shared/data/ixi_t1"


@pytest.fixture(scope="module")
def bundled():
    return load_bundled_slices(slices=5, groups="tissue")


def write_volumes(root: Path, bundled, subjects=("IXI001-HH-1", "IXI002-HH-2"), label_suffix="_T1_DLMUSE.nii.gz"):
    """NIfTI volumes [120, 120, 5] made of real bundled slices and their tissue maps."""
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir(parents=True)
    for index, subject in enumerate(subjects):
        picks = slice(5 * index, 5 * index + 5)
        volume = np.moveaxis(bundled.images[picks, 0] * 4000, 0, 2)
        labels = np.moveaxis(bundled.masks[picks], 0, 2).astype(np.uint8)
        nib.save(nib.Nifti1Image(volume.astype(np.float32), np.eye(4)), root / "images" / f"{subject}_T1.nii.gz")
        nib.save(nib.Nifti1Image(labels, np.eye(4)), root / "labels" / f"{subject}{label_suffix}")
    return root


def test_bundled_copy_has_every_subject_and_sensible_tissue_groups(bundled):
    assert len(bundled.subjects) == 93 and bundled.slices_per_subject == 5
    assert bundled.images.shape == (465, 1, 120, 120) and 0 <= bundled.images.min() and bundled.images.max() <= 1
    assert list(bundled.slice_indices[:5]) == [33, 39, 45, 51, 57]
    intensity = [bundled.images[:, 0][bundled.masks == k].mean() for k in range(4)]
    # T1 contrast checks the anatomical grouping: CSF darker than grey matter, darker than white.
    assert intensity[1] < intensity[3] < intensity[2]
    assert load_mri(None, slices=3).images.shape == (279, 1, 120, 120)


@pytest.mark.skipif(not SHARED_IXI.is_dir(), reason="full IXI set not beside the checkout")
def test_bundled_copy_matches_the_full_volumes_to_8_bits():
    full = load_nifti_folders(SHARED_IXI / "images", SHARED_IXI / "labels", slices=5, step=6, groups=None)
    bundled_raw = load_bundled_slices(slices=5, groups="tissue")
    assert np.abs(full.images - bundled_raw.images).max() <= 0.5 / 255 + 1e-6
    assert np.array_equal(group_labels(full.masks, "tissue"), bundled_raw.masks)


def test_nifti_folders_are_paired_by_subject_and_normalised(tmp_path, bundled):
    root = write_volumes(tmp_path, bundled)
    data = load_mri(root / "images", root / "labels", slices=1, groups="brain")
    assert data.subjects == ("IXI001-HH-1", "IXI002-HH-2") and data.images.shape == (2, 1, 120, 120)
    assert data.class_names == LABEL_GROUPS["brain"] and set(np.unique(data.masks)) == {0, 1}
    assert data.images.max() == 1.0 and list(data.slice_indices) == [2, 2]
    assert list(load_mri(root / "images", root / "labels", centre=1).slice_indices) == [1, 1]


def test_group_labels_and_positions():
    regions = np.array([0, 4, 51, 35, 85, 120, 207])
    assert group_labels(regions, "tissue").tolist() == [0, 1, 1, 2, 2, 3, 3]
    assert group_labels(regions, "brain").tolist() == [0, 1, 1, 1, 1, 1, 1]
    assert slice_positions(90, 3, 6).tolist() == [39, 45, 51]
    assert slice_positions(90, 1, 6, centre=30).tolist() == [30]
    with pytest.raises(MiriskError, match="do not fit"):
        slice_positions(10, 5, 6)
    with pytest.raises(MiriskError, match="unknown label grouping"):
        group_labels(regions, "lobes")
    with pytest.raises(MiriskError, match="empty"):
        normalise_volume(np.zeros((4, 4, 4)))


def test_unpaired_and_foreign_files_are_named(tmp_path, bundled):
    root = write_volumes(tmp_path / "a", bundled)
    (root / "labels" / "IXI002-HH-2_T1_DLMUSE.nii.gz").unlink()
    with pytest.raises(MiriskError, match="with an image but no label map: IXI002-HH-2"):
        load_mri(root / "images", root / "labels")
    (root / "images" / "IXI002-HH-2_T1.nii.gz").unlink()  # labels of more subjects than the images are fine
    assert load_mri(root / "images", root / "labels").subjects == ("IXI001-HH-1",)
    root = write_volumes(tmp_path / "b", bundled)
    (root / "images" / "notes.txt").write_text("hello")
    with pytest.raises(MiriskError, match="notes.txt is not a NIfTI file"):
        load_mri(root / "images", root / "labels")
    (root / "images" / "notes.txt").unlink()
    (root / "images" / "IXI001-HH-1_T1.nii.gz").write_bytes(b"not a volume")
    with pytest.raises(MiriskError, match="not a readable NIfTI volume"):
        load_mri(root / "images", root / "labels")


def test_shape_mismatch_and_missing_options(tmp_path, bundled):
    root = write_volumes(tmp_path, bundled)
    nib.save(nib.Nifti1Image(np.zeros((120, 120, 4), np.uint8), np.eye(4)), root / "labels" / "IXI001-HH-1_T1_DLMUSE.nii.gz")
    with pytest.raises(MiriskError, match="differ in shape"):
        load_mri(root / "images", root / "labels")
    with pytest.raises(MiriskError, match="needs --labels"):
        load_mri(root / "images", None)
    with pytest.raises(MiriskError, match="folder not found"):
        load_mri(tmp_path / "nowhere", root / "labels")
    with pytest.raises(MiriskError, match="1, 3 or 5 slices"):
        load_mri(None, slices=2)
    with pytest.raises(MiriskError, match="need --images/--labels folders"):
        load_mri(None, centre=30)


def test_neighbouring_slices_are_the_next_slice_along_the_axis(tmp_path, bundled):
    """Re-identification against a slice the model never reconstructed: 6 voxels on."""
    middle, near = load_bundled_slices(1), load_neighbour_slices({"images": None, "labels": None, "slices": 1})
    assert list(middle.slice_indices[:1]) == [45] and list(near.slice_indices[:1]) == [51]
    assert near.subjects == middle.subjects and not np.array_equal(near.images, middle.images)
    assert "no slices 6 voxels" in load_neighbour_slices({"slices": 5})
    root = write_volumes(tmp_path, bundled)
    moved = load_mri(root / "images", root / "labels", centre=1, offset=1)
    assert list(moved.slice_indices) == [2, 2]
    assert np.array_equal(moved.images, load_mri(root / "images", root / "labels").images)
    assert "leave the volume" in load_neighbour_slices({"images": root / "images", "labels": root / "labels"})


def test_a_header_declaring_an_absurd_volume_is_refused_before_reading(tmp_path):
    header = nib.Nifti1Header()
    header.set_data_shape((30000, 30000, 30000))
    header.set_data_dtype(np.uint8)
    path = tmp_path / "images" / "IXI001-HH-1_T1.nii"
    path.parent.mkdir()
    path.write_bytes(header.binaryblock + b"\0" * 4 + b"\0" * 64)  # a header and almost no voxels
    (tmp_path / "labels").mkdir()
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.uint8), np.eye(4)), tmp_path / "labels" / "IXI001-HH-1_s.nii.gz")
    with pytest.raises(MiriskError, match="declares 30000x30000x30000 voxels"):
        load_mri(tmp_path / "images", tmp_path / "labels")


def _volume_pair(tmp_path: Path, image_bytes: bytes, suffix: str = ".nii.gz") -> tuple[Path, Path]:
    path = tmp_path / "images" / f"IXI001-HH-1_T1{suffix}"
    path.parent.mkdir()
    path.write_bytes(image_bytes)
    (tmp_path / "labels").mkdir()
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.uint8), np.eye(4)), tmp_path / "labels" / "IXI001-HH-1_s.nii.gz")
    return tmp_path / "images", tmp_path / "labels"


@pytest.mark.parametrize("shape, message", [
    ((1024, 1024, 1000), "declares 1024x1024x1000 voxels of float64 (7.8 GiB)"),  # past the cap: never read
    ((400, 400, 400), "is not a readable NIfTI volume"),  # within it: the missing voxels are found short
])
def test_a_tiny_compressed_file_declaring_a_huge_volume_gets_one_line(tmp_path, shape, message):
    import gzip

    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(np.float64)
    tiny = gzip.compress(header.binaryblock + b"\0" * 4)
    assert len(tiny) < 200
    with pytest.raises(MiriskError, match=re.escape(message)) as refused:
        load_mri(*_volume_pair(tmp_path, tiny))
    assert "\n" not in str(refused.value)


def test_a_volume_whose_scale_factor_overflows_is_refused(tmp_path):
    import struct

    stored = bytearray(nib.Nifti1Image(np.full((4, 4, 4), 1000, np.int16), np.eye(4)).to_bytes())
    stored[112:116] = struct.pack("<f", 3e38)  # scl_slope: 1000 x 3e38 is past float32
    with pytest.raises(MiriskError, match="values that are not finite"):
        load_mri(*_volume_pair(tmp_path, bytes(stored), ".nii"))
