"""Brain MRI slices with segmentation label maps, from NIfTI or DICOM folders or the bundled IXI copy.

Layout on disk: ``images/<ID>_*.nii.gz`` and ``labels/<ID>_*.nii.gz``, paired by subject
id (the file name up to the first ``_``); or an images folder of DICOM series
(:mod:`mirisk.data.dicom`: subjects named by PatientID), with label maps as NIfTI files
named by PatientID or as DICOM series too. A labels folder may hold more subjects than
the images. Each volume is normalised on its own (divided by
the 99.5th percentile of its non-zero voxels, clipped to [0, 1]); slices are taken along
one axis (default 2, sagittal in the IXI data), at the middle and optionally at offsets
around it. Label maps are grouped into a few classes (:data:`LABEL_GROUPS`).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from importlib.resources import files
from pathlib import Path

import numpy as np

from mirisk.data import dicom
from mirisk.errors import MiriskError

BUNDLED = "bundled:ixi_t1"
MAX_VOXELS = 512**3  # a header declaring more voxels, or more than MAX_BYTES, is refused before any is read
MAX_BYTES = 2 * 1024**3
NIFTI_SUFFIXES = (".nii", ".nii.gz")
# DLMUSE / MUSE region ids grouped by tissue (checked against T1 intensity: CSF darkest,
# white matter brightest). "brain": background vs any labelled region.
CSF_REGIONS = (1, 4, 11, 46, 49, 50, 51, 52)
WHITE_MATTER_REGIONS = (35, 40, 41, 61, 62, 69, *range(81, 96))
LABEL_GROUPS = {
    "brain": ("background", "brain"),
    "tissue": ("background", "csf", "white_matter", "grey_matter"),
}


@dataclass(frozen=True)
class SliceDataset:
    """2-D slices ``images`` [N, 1, H, W] in [0, 1], their grouped label maps ``masks``
    [N, H, W], the subject each slice comes from and its index in the volume."""

    images: np.ndarray
    masks: np.ndarray
    subject_ids: np.ndarray
    slice_indices: np.ndarray
    class_names: tuple[str, ...]
    source: str

    @property
    def subjects(self) -> tuple[str, ...]:
        """Subject ids in first-appearance order."""
        return tuple(dict.fromkeys(self.subject_ids.tolist()))

    @property
    def slices_per_subject(self) -> int:
        return len(self.images) // len(self.subjects)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def head(self, count: int) -> SliceDataset:
        """The first ``count`` slices."""
        return SliceDataset(self.images[:count], self.masks[:count], self.subject_ids[:count],
                            self.slice_indices[:count], self.class_names, self.source)

    def of_subjects(self, subjects: list[str] | tuple[str, ...]) -> SliceDataset:
        """The slices of ``subjects``, in that subject order (slices kept in volume order)."""
        order = np.concatenate([np.flatnonzero(self.subject_ids == subject) for subject in subjects])
        return SliceDataset(self.images[order], self.masks[order], self.subject_ids[order],
                            self.slice_indices[order], self.class_names, self.source)


def group_labels(labels: np.ndarray, groups: str) -> np.ndarray:
    """Map DLMUSE region ids to the classes of ``groups`` (int64)."""
    if groups not in LABEL_GROUPS:
        raise MiriskError(f"unknown label grouping {groups!r}; choose one of {', '.join(LABEL_GROUPS)}")
    labels = np.asarray(labels)
    if groups == "brain":
        return (labels > 0).astype(np.int64)
    grouped = np.where(labels > 0, 3, 0)
    grouped[np.isin(labels, WHITE_MATTER_REGIONS)] = 2
    grouped[np.isin(labels, CSF_REGIONS)] = 1
    return grouped.astype(np.int64)


def normalise_volume(volume: np.ndarray) -> np.ndarray:
    """Divide by the 99.5th percentile of the non-zero voxels; clip to [0, 1]."""
    positive = volume[volume > 0]
    if positive.size == 0:
        raise MiriskError("a volume is empty (all voxels zero)")
    return np.clip(volume / np.percentile(positive, 99.5), 0.0, 1.0).astype(np.float32)


def slice_positions(depth: int, count: int, step: int, centre: int | None = None) -> np.ndarray:
    """``count`` slice indices ``step`` apart, centred on ``centre`` (default: the middle of
    an axis of length ``depth``)."""
    if count < 1 or step < 1:
        raise MiriskError("the number of slices and their spacing must be at least 1")
    offsets = (np.arange(count) - (count - 1) / 2) * step
    positions = np.round((depth // 2 if centre is None else centre) + offsets).astype(int)
    if positions.min() < 0 or positions.max() >= depth:
        raise MiriskError(f"{count} slices {step} apart do not fit in an axis of {depth} voxels")
    return positions


def orient(slices: np.ndarray) -> np.ndarray:
    """Slices [..., P, S] from a PSR volume, turned so that superior is up."""
    return np.flip(np.swapaxes(slices, -1, -2), axis=(-2, -1)).copy()


def subject_id(path: Path) -> str:
    return path.name.split("_", 1)[0]


def _nifti_files(folder: Path, what: str) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        if not path.name.endswith(NIFTI_SUFFIXES):
            raise MiriskError(f"{path} is not a NIfTI file (.nii or .nii.gz)")
        key = subject_id(path)
        if key in found:
            raise MiriskError(f"two {what} files for subject {key}: {found[key].name} and {path.name}")
        found[key] = path
    if not found:
        raise MiriskError(f"no NIfTI files in {folder}")
    return found


def _read_volume(path: Path) -> np.ndarray:
    import nibabel as nib
    from nibabel.filebasedimages import ImageFileError

    try:
        image = nib.load(path)
        shape = tuple(int(size) for size in image.shape)
        voxels = int(np.prod(shape, dtype=np.float64))
        size = voxels * image.get_data_dtype().itemsize
        if voxels > MAX_VOXELS or size > MAX_BYTES:
            raise MiriskError(f"{path} declares {'x'.join(map(str, shape))} voxels of {image.get_data_dtype()} "
                              f"({size / 1024**3:.1f} GiB), more than the {MAX_VOXELS:,} voxels or "
                              f"{MAX_BYTES // 1024**3} GiB a brain volume needs; is its header right?")
        volume = np.asarray(image.dataobj)
    except (ImageFileError, OSError, EOFError, ValueError, zlib.error) as error:
        raise MiriskError(f"{path} is not a readable NIfTI volume: {' '.join(str(error).split())}") from None
    if volume.ndim != 3:
        raise MiriskError(f"{path} is {volume.ndim}-D; a 3-D volume is needed")
    if not (np.isfinite(volume).all() and np.abs(volume).max(initial=0) <= np.finfo(np.float32).max):
        raise MiriskError(f"{path} holds values that are not finite (NaN or infinite voxels, or a scale factor "
                          "that overflows); the volume or its header is wrong")
    return volume


VolumeReader = Callable[[], np.ndarray]


def volume_readers(folder: Path, what: str) -> dict[str, VolumeReader]:
    """Each subject's volume reader in a folder of NIfTI files or of DICOM series."""
    if not folder.is_dir():
        raise MiriskError(f"{what} folder not found: {folder}")
    if dicom.looks_like_dicom(folder):
        series = dicom.group_series(folder)
        return {patient: partial(dicom.read_series, slices) for patient, slices in series.items()}
    return {key: partial(_read_volume, path) for key, path in _nifti_files(folder, what).items()}


def load_nifti_folders(images: str | Path, labels: str | Path, axis: int = 2, slices: int = 1, step: int = 6,
                       groups: str | None = "brain", centre: int | None = None, offset: int = 0) -> SliceDataset:
    """Pair ``images`` and ``labels`` volumes (NIfTI or DICOM) by subject id and take slices
    from each, around index ``centre`` of ``axis`` (default its middle), moved by ``offset``
    voxels (a neighbouring slice for re-identification). ``groups`` None keeps the label
    maps' own region ids (no class names). Subjects with labels but no image are left out."""
    image_files = volume_readers(Path(images), "image")
    label_files = volume_readers(Path(labels), "label")
    unlabelled = sorted(set(image_files) - set(label_files))
    if unlabelled:
        raise MiriskError(f"subject(s) with an image but no label map: {', '.join(unlabelled[:5])}")
    if axis not in (0, 1, 2):
        raise MiriskError(f"axis must be 0, 1 or 2, got {axis}")
    image_slices, label_slices, ids, indices = [], [], [], []
    for key in sorted(image_files):
        volume, label = image_files[key](), label_files[key]()
        if volume.shape != label.shape:
            raise MiriskError(f"subject {key}: image {volume.shape} and label map {label.shape} differ in shape")
        positions = slice_positions(volume.shape[axis], slices, step, centre) + offset
        if positions.min() < 0 or positions.max() >= volume.shape[axis]:
            raise MiriskError(f"subject {key}: slices moved by {offset} voxels leave the volume's axis "
                              f"({volume.shape[axis]} voxels)")
        image_slices.append(np.moveaxis(normalise_volume(volume.astype(np.float32)), axis, 0)[positions])
        label_slices.append(np.moveaxis(label, axis, 0)[positions])
        ids += [key] * len(positions)
        indices.append(positions)
    shapes = {stack.shape[1:] for stack in image_slices}
    if len(shapes) > 1:
        raise MiriskError(f"slices differ in shape across subjects: {sorted(shapes)}; resample the volumes first")
    regions = orient(np.concatenate(label_slices))
    return SliceDataset(
        images=orient(np.concatenate(image_slices))[:, None],
        masks=regions.astype(np.int64) if groups is None else group_labels(regions, groups),
        subject_ids=np.array(ids), slice_indices=np.concatenate(indices),
        class_names=() if groups is None else LABEL_GROUPS[groups], source=f"{Path(images)} + {Path(labels)}",
    )


BUNDLED_STEP = 6  # voxels between the bundled copy's slices


def load_bundled_slices(slices: int = 1, groups: str = "brain", offset: int = 0) -> SliceDataset:
    """The bundled IXI copy: 5 sagittal slices (middle, +-6, +-12 voxels) of each of 93
    subjects, 8-bit; ``slices`` picks 1 (the middle), 3 (+-6) or 5 of them, moved by
    ``offset`` voxels (0 or 6: the neighbouring slices, for re-identification)."""
    with np.load(str(files("mirisk.data") / "bundled/ixi_t1_slices.npz")) as archive:
        images, labels, ids, positions = (archive[key] for key in ("images", "labels", "subject_ids", "slice_indices"))
    chosen = {1: [2], 3: [1, 2, 3], 5: [0, 1, 2, 3, 4]}.get(slices)
    if chosen is None:
        raise MiriskError(f"the bundled IXI copy holds 1, 3 or 5 slices per subject, not {slices}")
    if offset % BUNDLED_STEP or not 0 <= max(chosen) + offset // BUNDLED_STEP < len(positions):
        raise MiriskError(f"the bundled IXI copy holds no slices {offset} voxels from the {slices} chosen")
    chosen = [index + offset // BUNDLED_STEP for index in chosen]
    n_subjects = len(ids)
    return SliceDataset(
        images=(images[:, chosen].reshape(-1, 1, *images.shape[2:]) / 255.0).astype(np.float32),
        masks=group_labels(labels[:, chosen].reshape(-1, *labels.shape[2:]), groups),
        subject_ids=np.repeat(ids, len(chosen)), slice_indices=np.tile(positions[chosen], n_subjects),
        class_names=LABEL_GROUPS[groups], source=BUNDLED,
    )


def load_mri(images: str | Path | None = None, labels: str | Path | None = None, slices: int = 1,
             groups: str = "brain", axis: int = 2, centre: int | None = None, offset: int = 0) -> SliceDataset:
    """The bundled IXI slices (no folders, or ``images`` = ``bundled:ixi_t1``), or a pair of
    NIfTI folders; ``offset`` moves every slice along the axis (a neighbouring slice)."""
    if images is None or str(images) == BUNDLED:
        if labels is not None:
            raise MiriskError("--labels goes with --images DIR; the bundled copy has its own label maps")
        if centre is not None or axis != 2:
            raise MiriskError("the bundled copy holds sagittal slices around the middle only; "
                              "--slice-index and --axis need --images/--labels folders")
        return load_bundled_slices(slices, groups, offset)
    if labels is None:
        raise MiriskError("--images DIR needs --labels DIR (label maps paired by subject id)")
    return load_nifti_folders(images, labels, axis=axis, slices=slices, groups=groups, centre=centre, offset=offset)


NEIGHBOUR_OFFSET = BUNDLED_STEP


def load_neighbour_slices(source: dict[str, object]) -> SliceDataset | str:
    """The same subjects' slices ``NEIGHBOUR_OFFSET`` voxels further along the axis (a slice
    the model never segmented for the attacker), or why there are none."""
    try:
        return load_mri(**source, offset=NEIGHBOUR_OFFSET)
    except MiriskError as error:
        return str(error)
