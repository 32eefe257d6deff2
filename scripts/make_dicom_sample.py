"""Write a small DICOM copy of bundled IXI slices, with NIfTI label maps beside it.

For each of the first N subjects of the bundled IXI copy (src/mirisk/data/bundled), the
5 stored sagittal slices become a volume [120, 120, 5] (8-bit values x 16, integers, so the
DICOM copy is exact) written as one MR series per subject with pydicom
(`mirisk.data.dicom_write`), PatientID = the IXI subject id; the tissue maps are written
as NIfTI `labels/<ID>_seg.nii.gz`; with `--nifti`, the same volumes also as NIfTI
`nifti/<ID>_T1.nii.gz` (the originals the DICOM copy must read back to). `mirisk train segmenter --images OUT/dicom --labels
OUT/labels` and `mirisk audit --data OUT/dicom` then read it as a hospital export.

IXI data: the IXI Dataset (Imperial College London, Brain Development project,
brain-development.org/ixi-dataset), CC BY-SA 3.0; see src/mirisk/data/bundled/ATTRIBUTION.md.

Run: python scripts/make_dicom_sample.py OUT [--subjects 12] [--nifti]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nibabel as nib
import numpy as np

from mirisk.artifacts import make_private_dir, write_bytes
from mirisk.data.dicom_write import write_series
from mirisk.data.mri import load_bundled_slices

ATTRIBUTION = ("IXI brain MRI slices (the IXI Dataset, Imperial College London, brain-development.org/ixi-dataset, "
               "CC BY-SA 3.0), via mirisk's bundled copy; written as DICOM by scripts/make_dicom_sample.py.\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--subjects", type=int, default=12)
    parser.add_argument("--nifti", action="store_true", help="also write the volumes as NIfTI")
    arguments = parser.parse_args()
    bundled = load_bundled_slices(slices=5, groups="tissue")
    out = make_private_dir(arguments.out)
    labels = make_private_dir(out / "labels")
    for index, subject in enumerate(bundled.subjects[:arguments.subjects]):
        picks = bundled.subject_ids == subject
        volume = np.moveaxis(np.round(bundled.images[picks, 0] * 255) * 16, 0, 2)
        write_series(volume, out / "dicom" / subject, subject, spacing=(2.0, 2.0, 12.0),
                     description="IXI T1 (5 sagittal slices)")
        if arguments.nifti:
            nib.save(nib.Nifti1Image(volume.astype(np.float32), np.eye(4)),
                     make_private_dir(out / "nifti") / f"{subject}_T1.nii.gz")
        tissue = np.moveaxis(bundled.masks[picks], 0, 2).astype(np.uint8)
        nib.save(nib.Nifti1Image(tissue, np.eye(4)), labels / f"{subject}_seg.nii.gz")
        print(f"{index + 1}: {subject}")
    write_bytes(out / "ATTRIBUTION.txt", ATTRIBUTION.encode())


if __name__ == "__main__":
    main()
