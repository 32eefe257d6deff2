"""Image data sets laid out as one sub-folder per person (or class)."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from mirisk.errors import MiriskError

IMAGE_SUFFIXES = frozenset({".pgm", ".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})


@dataclass(frozen=True)
class ImageDataset:
    """Images as float32 ``[N, C, H, W]`` in [0, 1], an integer label per record, and the
    subject (person) each record is about. Identification is measured against subjects."""

    images: np.ndarray
    labels: np.ndarray
    subject_ids: np.ndarray
    class_names: tuple[str, ...]
    source: str

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.ndim != 4:
            raise MiriskError(f"images must be [N, C, H, W], got shape {self.images.shape}")
        if len(self.labels) != n or len(self.subject_ids) != n:
            raise MiriskError("images, labels and subject ids differ in length")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.images.shape[1:])  # type: ignore[return-value]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def subset(self, index: np.ndarray) -> "ImageDataset":
        return ImageDataset(
            self.images[index], self.labels[index], self.subject_ids[index], self.class_names, self.source
        )

    def fingerprint(self) -> str:
        """A short digest of pixels and labels, so a model's metadata can name its data."""
        digest = hashlib.sha256()
        digest.update(np.ascontiguousarray((self.images * 255).round().astype(np.uint8)).tobytes())
        digest.update(self.labels.astype(np.int64).tobytes())
        return digest.hexdigest()[:16]


MAX_PIXELS = 16_000_000  # a photo's pixels; a file declaring more is refused before it is decoded


def _read_image(path: Path) -> Image.Image:
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise MiriskError(f"{path} declares {width} x {height} pixels, more than the {MAX_PIXELS:,} a photo "
                                  "needs (a decompression bomb?); it was not decoded")
            image.load()
            return image.copy()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as error:
        raise MiriskError(f"cannot read image {path}: {error}") from None


def load_image_folder(
    root: str | Path, size: tuple[int, int] | None = None, colour: bool | None = None
) -> ImageDataset:
    """Load ``root/<person>/<image>`` files (PGM, PNG, JPEG, BMP, TIFF; any size, grey or
    colour). ``size`` is (height, width); by default the most common size in the folder.
    ``colour`` defaults to True when any image has colour."""
    root = Path(root)
    if not root.is_dir():
        raise MiriskError(f"data folder not found: {root}")
    people = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    files = {p.name: sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES) for p in people}
    files = {name: paths for name, paths in files.items() if paths}
    if not files:
        raise MiriskError(f"no images found in {root}: expected one sub-folder of images per person")
    if len(files) < 2:
        raise MiriskError(f"{root} holds images of one class only ({next(iter(files))}); need at least two")
    raw = [(name, _read_image(path)) for name, paths in files.items() for path in paths]
    if colour is None:
        colour = any(image.mode not in ("L", "I", "I;16", "1", "F") for _, image in raw)
    if size is None:
        width, height = Counter(image.size for _, image in raw).most_common(1)[0][0]
        size = (height, width)
    mode = "RGB" if colour else "L"
    target = (size[1], size[0])
    arrays = [np.asarray(image.convert(mode).resize(target) if image.size != target else image.convert(mode))
              for _, image in raw]
    stacked = np.stack(arrays).astype(np.float32) / 255.0
    images = stacked[:, None] if stacked.ndim == 3 else stacked.transpose(0, 3, 1, 2)
    class_names = tuple(files)
    index = {name: i for i, name in enumerate(class_names)}
    labels = np.array([index[name] for name, _ in raw], dtype=np.int64)
    return ImageDataset(images, labels, np.array([name for name, _ in raw]), class_names, str(root))
