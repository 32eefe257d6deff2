"""Labeled Faces in the Wild (deep-funneled) read from its published folder layout.

G. B. Huang, M. Ramesh, T. Berg, E. Learned-Miller, "Labeled Faces in the Wild", UMass
Amherst TR 07-49, 2007; deep funneling: Huang, Mattar, Lee & Learned-Miller, NIPS 2012.

The protocol: the *private* people are those with at least ``PRIVATE_MIN_PHOTOS`` photos (62
people), the people a target model is trained on; the *public* people are those with fewer
than ``PUBLIC_MAX_PHOTOS`` photos (5,591 people, 8,909 photos), disjoint from them, from whom
an attacker's prior is learnt. Every photo is cropped to its central ``CROP`` pixels (the
deep-funneled face fills about the central 120 of 250) and resized to ``SIZE`` x ``SIZE``
colour, once, here.
"""

from __future__ import annotations

import io
import itertools
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

from mirisk.data.images import ImageDataset, _read_image
from mirisk.errors import MiriskError

CROP = 120
SIZE = 64
PRIVATE_MIN_PHOTOS = 20
PRIVATE_PER_PERSON = 30  # the private people's photos used: the first 30 of each (20 or more each)
PRIVATE_TRAIN_PER_PERSON = 14  # a model trains on 14 of each by default; the other 6 to 16 are held out
PUBLIC_MAX_PHOTOS = 10
BUNDLED_PRIVATE = "bundled:lfw_private"
BUNDLED_PUBLIC = "bundled:lfw_public"
PRIVATE_PREFIX, PUBLIC_PREFIX = "lfw_private:", "lfw_public:"


def lfw_photos(root: Path) -> dict[str, list[Path]]:
    """Each person's JPEG files in an LFW folder (``root/<First_Last>/<First_Last>_NNNN.jpg``)."""
    if not root.is_dir():
        raise MiriskError(f"LFW folder not found: {root}")
    people = {p.name: sorted(p.glob("*.jpg")) for p in sorted(root.iterdir()) if p.is_dir()}
    people = {name: files for name, files in people.items() if files}
    if not people:
        raise MiriskError(f"{root} is not in LFW's layout: expected <First_Last>/<First_Last>_NNNN.jpg")
    return people


def crop_face(image: Image.Image, size: int = SIZE) -> np.ndarray:
    """The central ``CROP`` pixels of an LFW photo at ``size`` x ``size``, RGB ``[3, size, size]`` in [0, 1]."""
    width, height = image.size
    left, top = (width - CROP) // 2, (height - CROP) // 2
    face = image.convert("RGB").crop((left, top, left + CROP, top + CROP)).resize((size, size), Image.BICUBIC)
    return np.asarray(face, dtype=np.float32).transpose(2, 0, 1) / 255.0


def read_people(root: Path, photos: dict[str, list[Path]], source: str, size: int = SIZE) -> ImageDataset:
    """The listed photos of each person, cropped, labelled in the order of ``photos``."""
    names = tuple(photos)
    images = [crop_face(_read_image(path), size) for name in names for path in photos[name]]
    labels = np.array([i for i, name in enumerate(names) for _ in photos[name]], dtype=np.int64)
    return ImageDataset(np.stack(images), labels, np.array(names)[labels], names, source)


def public_people(root: Path) -> dict[str, list[Path]]:
    """The people with fewer than ``PUBLIC_MAX_PHOTOS`` photos: an attacker's public faces."""
    return {name: files for name, files in lfw_photos(root).items() if len(files) < PUBLIC_MAX_PHOTOS}


def private_people(root: Path, per_person: int) -> dict[str, list[Path]]:
    """The people with at least ``PRIVATE_MIN_PHOTOS`` photos, the first ``per_person`` of each."""
    return {name: files[:per_person] for name, files in lfw_photos(root).items() if len(files) >= PRIVATE_MIN_PHOTOS}


def load_bundled_private() -> ImageDataset:
    """The private people's crops shipped in the package (``scripts/bundle_lfw.py``)."""
    with (resources.files("mirisk.data").joinpath("bundled/lfw_private.npz").open("rb") as handle,
          np.load(handle, allow_pickle=False) as archive):
        jpeg, offsets, labels, names = (archive[key] for key in ("jpeg", "offsets", "labels", "class_names"))
    images = [np.asarray(Image.open(io.BytesIO(jpeg[start:end].tobytes())).convert("RGB"), dtype=np.float32)
              for start, end in itertools.pairwise(offsets)]
    class_names = tuple(str(name) for name in names)
    return ImageDataset(np.stack(images).transpose(0, 3, 1, 2) / 255.0, labels.astype(np.int64),
                        np.array(class_names)[labels], class_names, BUNDLED_PRIVATE)


def load_lfw(source: str) -> ImageDataset:
    """``bundled:lfw_private``, ``lfw_private:DIR`` or ``lfw_public:DIR`` (DIR: LFW in its published
    layout); ``bundled:lfw_public`` is not shipped (its prior is) and is refused."""
    if source == BUNDLED_PRIVATE:
        return load_bundled_private()
    if source == BUNDLED_PUBLIC:
        raise MiriskError(f"LFW's public photos are not shipped (the prior learnt from them is); pass "
                          f"{PUBLIC_PREFIX}DIR with DIR an LFW folder in its published layout")
    if source.startswith(PRIVATE_PREFIX):
        root = Path(source.removeprefix(PRIVATE_PREFIX))
        return read_people(root, private_people(root, PRIVATE_PER_PERSON), source)
    root = Path(source.removeprefix(PUBLIC_PREFIX))
    return read_people(root, public_people(root), source)


def is_lfw(source: str) -> bool:
    """Whether ``source`` names LFW data (bundled or a folder) rather than an image folder."""
    return source in (BUNDLED_PRIVATE, BUNDLED_PUBLIC) or source.startswith((PRIVATE_PREFIX, PUBLIC_PREFIX))
