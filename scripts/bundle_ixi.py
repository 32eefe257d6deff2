"""Make src/mirisk/data/bundled/ixi_t1_slices.npz from the IXI T1 volumes (../shared/data).

Usage: python scripts/bundle_ixi.py [IXI_DIR]
Keeps, for each of the 93 subjects, 5 sagittal slices (the middle and +-6, +-12 voxels),
each volume normalised by mirisk.data.mri's rule and stored as 8 bits, beside the raw
DLMUSE region ids of the same slices (so any label grouping can be applied later)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from mirisk.data.mri import load_nifti_folders

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src/mirisk/data/bundled/ixi_t1_slices.npz"


def main(source: str = str(ROOT.parent / "shared/data/ixi_t1")) -> None:
    slices = load_nifti_folders(Path(source) / "images", Path(source) / "labels", axis=2, slices=5, step=6,
                                groups=None)
    n_subjects = len(slices.subjects)
    shape = (n_subjects, 5, *slices.images.shape[2:])
    np.savez_compressed(
        OUT,
        images=np.round(slices.images[:, 0] * 255).astype(np.uint8).reshape(shape),
        labels=slices.masks.astype(np.uint8).reshape(shape),
        subject_ids=np.array(slices.subjects),
        slice_indices=slices.slice_indices[:5],
    )
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.1f} MB): {n_subjects} subjects x 5 slices from {source}")


if __name__ == "__main__":
    main(*sys.argv[1:])
