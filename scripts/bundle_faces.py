"""Make src/mirisk/data/bundled/att_faces.npz from the full AT&T set (../shared/data).

Usage: python scripts/bundle_faces.py [SOURCE_DIR]
The archive keeps the 8-bit pixels exactly (lossless, compressed), labels and names."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from mirisk.data.images import load_image_folder

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src/mirisk/data/bundled/att_faces.npz"


def main(source: str = str(ROOT.parent / "shared/data/att_faces")) -> None:
    faces = load_image_folder(source)
    pixels = np.round(faces.images[:, 0] * 255).astype(np.uint8)
    np.savez_compressed(OUT, images=pixels, labels=faces.labels, class_names=np.array(faces.class_names))
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.1f} MB): {pixels.shape} from {source}")


if __name__ == "__main__":
    main(*sys.argv[1:])
