"""Face data: the bundled AT&T Database of Faces, or any image folder.

The Database of Faces, AT&T Laboratories Cambridge (formerly "ORL"); cite F. Samaria and
A. Harter, "Parameterisation of a stochastic model for human face identification",
IEEE Workshop on Applications of Computer Vision, 1994. See bundled/ATTRIBUTION.md."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from mirisk.data.images import ImageDataset, load_image_folder
from mirisk.data.lfw import BUNDLED_PRIVATE as LFW_PRIVATE
from mirisk.data.lfw import PRIVATE_PREFIX as LFW_PRIVATE_PREFIX
from mirisk.data.lfw import PRIVATE_TRAIN_PER_PERSON, is_lfw, load_lfw

BUNDLED = "bundled:att_faces"
BUNDLED_PRIVATE = "bundled:att_faces_private"
BUNDLED_PUBLIC = "bundled:att_faces_public"
PRIVATE_PEOPLE = tuple(f"s{i:02d}" for i in range(1, 21))
PUBLIC_PEOPLE = tuple(f"s{i:02d}" for i in range(21, 41))


def load_bundled_faces() -> ImageDataset:
    """The 400 AT&T faces (40 people x 10, 112x92 grey) shipped inside the package."""
    with resources.files("mirisk.data").joinpath("bundled/att_faces.npz").open("rb") as handle:
        with np.load(handle, allow_pickle=False) as archive:
            pixels, labels, names = archive["images"], archive["labels"], archive["class_names"]
    class_names = tuple(str(n) for n in names)
    return ImageDataset(
        images=(pixels.astype(np.float32) / 255.0)[:, None],
        labels=labels.astype(np.int64),
        subject_ids=np.array(class_names)[labels],
        class_names=class_names,
        source=BUNDLED,
    )


def people_subset(dataset: ImageDataset, people: tuple[str, ...], source: str) -> ImageDataset:
    """The photos of ``people`` only, relabelled 0..len(people)-1 in that order."""
    keep = np.isin(dataset.subject_ids, people)
    index = {name: i for i, name in enumerate(people)}
    subjects = dataset.subject_ids[keep]
    return ImageDataset(dataset.images[keep], np.array([index[s] for s in subjects], dtype=np.int64), subjects,
                        people, source)


def load_faces(source: str | Path | None = None) -> ImageDataset:
    """``None`` or ``"bundled:att_faces"`` gives the bundled faces; ``bundled:att_faces_private``
    (s01-s20, the people a model is trained on) and ``bundled:att_faces_public`` (s21-s40, the
    other people an attacker's prior learns from) split them; ``bundled:lfw_private``,
    ``lfw_private:DIR`` and ``lfw_public:DIR`` are LFW's (:mod:`mirisk.data.lfw`); anything
    else is a folder."""
    if source is None or str(source) == BUNDLED:
        return load_bundled_faces()
    if is_lfw(str(source)):
        return load_lfw(str(source))
    if str(source) in (BUNDLED_PRIVATE, BUNDLED_PUBLIC):
        people = PRIVATE_PEOPLE if str(source) == BUNDLED_PRIVATE else PUBLIC_PEOPLE
        return people_subset(load_bundled_faces(), people, str(source))
    return load_image_folder(source)


def default_training_photos(dataset: ImageDataset) -> int:
    """Training photos per person when none are asked for: LFW's private people's own split
    (14 of their 20 to 30), else 7 (of the AT&T people's 10)."""
    source = dataset.source
    return PRIVATE_TRAIN_PER_PERSON if source == LFW_PRIVATE or source.startswith(LFW_PRIVATE_PREFIX) else 7
