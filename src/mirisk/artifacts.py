"""Writing results safely: reconstructions are sensitive data about real people, so every
file is owner-only (0600, folders 0700) and nothing that exists is overwritten unless asked.
Evidence files are written atomically: to a private temporary file beside the target,
flushed to disk, then renamed over it, so a crash leaves the old file or the new one, never
a torn one."""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
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
    return make_private_dir(path)


def make_private_dir(path: Path) -> Path:
    """``path``, and every folder above it that does not exist yet, created owner-only
    (folders that exist already keep their mode, except ``path`` itself)."""
    path = Path(path)
    for link in (path, *path.parents):
        if link.is_symlink() and not link.exists():
            raise MiriskError(f"{link} is a link to {os.readlink(link)}, which does not exist; give a real folder")
    created = [parent for parent in reversed(path.parents) if not parent.exists()]
    for folder in created:
        folder.mkdir()
        folder.chmod(DIR_MODE)
    path.mkdir(exist_ok=True)
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
    except RecursionError:
        raise MiriskError(f"{path} is nested too deeply to be a mirisk file") from None


def write_json(path: Path, payload: dict[str, Any]) -> Path:
    return write_bytes(path, (json.dumps(payload, indent=2, sort_keys=False) + "\n").encode("utf-8"))


def npz_bytes(**arrays: np.ndarray) -> bytes:
    """A compressed ``.npz`` archive of ``arrays``, in memory."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def write_npz(path: Path, **arrays: np.ndarray) -> Path:
    return write_bytes(path, npz_bytes(**arrays))


def write_bytes(path: Path, content: bytes) -> Path:
    """Write ``content`` to ``path`` owner-only and atomically (temporary file, fsync, rename)."""
    path = Path(path)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), FILE_MODE)
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return path
