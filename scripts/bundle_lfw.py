"""Make src/mirisk/data/bundled/lfw_private.npz from LFW (../shared/data/lfw): the first 30
photos of each of the 62 people with 20 or more, cropped as mirisk.data.lfw states (central
120 px, 64 x 64 colour) and stored as JPEG (quality 95) in one byte array with offsets, so
that a fresh clone's demo and tests have LFW's private people without the 250 MB folder.

Usage: python scripts/bundle_lfw.py [LFW_DIR]"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from mirisk.data.lfw import PRIVATE_PER_PERSON, private_people, read_people

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src/mirisk/data/bundled/lfw_private.npz"


def main(source: str = str(ROOT.parent / "shared/data/lfw")) -> None:
    people = read_people(Path(source), private_people(Path(source), PRIVATE_PER_PERSON), "bundled:lfw_private")
    blobs = []
    for image in people.images:
        buffer = io.BytesIO()
        Image.fromarray(np.round(image.transpose(1, 2, 0) * 255).astype(np.uint8)).save(buffer, "JPEG", quality=95)
        blobs.append(buffer.getvalue())
    offsets = np.cumsum([0, *map(len, blobs)]).astype(np.int64)
    np.savez(OUT, jpeg=np.frombuffer(b"".join(blobs), dtype=np.uint8), offsets=offsets, labels=people.labels,
             class_names=np.array(people.class_names))
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.1f} MB): {len(blobs)} photos of {people.n_classes} people")


if __name__ == "__main__":
    main(*sys.argv[1:])
