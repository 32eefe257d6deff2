"""Writing results safely: reconstructions are sensitive data about real people, so every
file is owner-only (0600, folders 0700) and nothing that exists is overwritten unless asked."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from mirisk.errors import MiriskError

FILE_MODE = 0o600
DIR_MODE = 0o700


def prepare_output_dir(path: str | Path, force: bool = False) -> Path:
    """Create ``path`` owner-only; refuse a folder that already holds files unless ``force``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise MiriskError(f"output path {path} exists and is not a folder")
    if path.is_dir() and any(path.iterdir()) and not force:
        raise MiriskError(f"output folder {path} is not empty; choose a new folder or pass --force to overwrite")
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(DIR_MODE)
    return path


def open_private(path: Path, binary: bool = False):
    """Open ``path`` for writing, created with mode 0600 (never readable by others, even briefly)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.fchmod(descriptor, FILE_MODE)
    return os.fdopen(descriptor, "wb" if binary else "w", encoding=None if binary else "utf-8")


def read_json(path: Path) -> Any:
    """Parse a JSON file, or raise a one-line error naming it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise MiriskError(f"{path} is not valid JSON: {error}") from None


def write_json(path: Path, payload: dict[str, Any]) -> Path:
    with open_private(path) as handle:
        json.dump(payload, handle, indent=2, sort_keys=False)
        handle.write("\n")
    return path


def write_npz(path: Path, **arrays: np.ndarray) -> Path:
    with open_private(path, binary=True) as handle:
        np.savez_compressed(handle, **arrays)
    return path


def write_bytes(path: Path, content: bytes) -> Path:
    with open_private(path, binary=True) as handle:
        handle.write(content)
    return path
