"""An optional on-disk cache of the face judge's embeddings, shared by processes.

Embedding a gallery of a few hundred photos takes the judge some 30 s on one core, and every
process of an audit, a sweep or a Ray cluster embeds the same photos again. With
``MIRISK_CACHE_DIR`` set, each embedded image is kept there (owner-only, written atomically)
under the digest of its float32 pixels, its shape and the judge's identity (dlib's version, the model
files' sizes, the preprocessing constants), and read back without unpickling. Off by
default: face descriptors are biometric data about the people in the images, so nothing is
written outside the user's output folders unless they ask for it."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from mirisk.artifacts import make_private_dir, write_npz

CACHE_VARIABLE = "MIRISK_CACHE_DIR"


def cache_folder() -> Path | None:
    """``$MIRISK_CACHE_DIR/judge`` (made owner-only), or None when the variable is unset."""
    root = os.environ.get(CACHE_VARIABLE)
    return None if not root else make_private_dir(Path(root) / "judge")


def load(folder: Path, key: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached (descriptors, detected) for ``key``, or None (a torn file counts as absent)."""
    path = folder / f"{key}.npz"
    try:
        with np.load(path, allow_pickle=False) as stored:
            return stored["descriptors"], stored["detected"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None


def store(folder: Path, key: str, descriptors: np.ndarray, detected: np.ndarray) -> None:
    write_npz(folder / f"{key}.npz", descriptors=descriptors, detected=detected)
