"""The independent face judge: dlib's ResNet face descriptor (King, "Dlib-ml", JMLR 2009; the
``dlib_face_recognition_resnet_model_v1`` network, 128-d, trained by Davis King on about 3
million faces of some 7,500 people, 99.38% on LFW) with dlib's HOG face detector and its
5-point aligner.

It was trained on none of the people mirisk audits and shares nothing with the attacks, so a
reconstruction it names as the right person looks like that person to a recogniser trained
elsewhere (the false-positive problem of same-task evaluators: Ho et al. 2025, "Revisiting
model inversion evaluation", arXiv 2505.03519). No attack, prior or selection step may
import this module: a reconstruction tuned against its judge proves nothing.

Preprocessing, for every image (gallery and reconstructions alike): min-max stretched to 8
bits (as for display), grey repeated to RGB, upsampled with bicubic interpolation by the
smallest integer factor that makes its shorter side at least 160 pixels (the HOG detector
finds faces of about 80 pixels and up), then the HOG detector runs; the largest face found is
aligned by the 5-point model to a 150-pixel chip (padding 0.25). Where no face is found, the
whole frame is aligned and embedded instead, and counted: the *face rate* is the share of
images in which the detector found a face.

The model files ship inside the PyPI package ``face_recognition_models`` (CC0 1.0 /
public domain, Davis King; packaged by Adam Geitgey); they are read from the installed
package, never downloaded. The package's own ``__init__`` (which imports ``pkg_resources``)
is never run: the files are located through the import system.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

from mirisk.errors import MiriskError
from mirisk.metrics import judge_cache

MIN_SIDE = 160
CHIP_SIZE, CHIP_PADDING = 150, 0.25
DESCRIPTOR_SIZE = 128
RECOGNISER_FILE = "dlib_face_recognition_resnet_model_v1.dat"
ALIGNER_FILE = "shape_predictor_5_face_landmarks.dat"
DESCRIPTION = ("dlib ResNet face descriptor (128-d; trained on ~3M faces of other people) on HOG-detected, "
               "5-point-aligned faces; nearest centroid of each person's held-out photos")


@dataclass(frozen=True)
class FaceEmbeddings:
    """One 128-d descriptor per image and whether the detector found a face in it."""

    descriptors: np.ndarray
    detected: np.ndarray

    def subset(self, index: np.ndarray) -> "FaceEmbeddings":
        return FaceEmbeddings(self.descriptors[index], self.detected[index])


def model_folder() -> Path:
    """Where the installed ``face_recognition_models`` package keeps its model files."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MiriskError("the independent face judge needs the package face_recognition_models "
                          "(pip install face_recognition_models dlib-bin)")
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    for name in (RECOGNISER_FILE, ALIGNER_FILE):
        if not (folder / name).is_file():
            raise MiriskError(f"the face judge's model file {name} is missing from {folder}; reinstall "
                              "face_recognition_models")
    return folder


def to_judge_pixels(image: np.ndarray) -> np.ndarray:
    """``[C, H, W]`` float image -> the judge's ``[H', W', 3]`` uint8 RGB input (see the module doc)."""
    if not np.isfinite(image).all():
        image = np.nan_to_num(image, nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(image.min()), float(image.max())
    stretched = np.round((image - low) / max(high - low, 1e-12) * 255).astype(np.uint8)
    grey_or_rgb = stretched[0] if stretched.shape[0] == 1 else stretched[:3].transpose(1, 2, 0)
    picture = Image.fromarray(grey_or_rgb)
    factor = max(1, -(-MIN_SIDE // min(picture.size)))
    if factor > 1:
        picture = picture.resize((picture.width * factor, picture.height * factor), Image.BICUBIC)
    return np.ascontiguousarray(np.asarray(picture.convert("RGB")))


class FaceJudge:
    """Embeds images with the independent recogniser; each image's result is cached by its
    content (in memory, and on disk when ``MIRISK_CACHE_DIR`` is set:
    :mod:`mirisk.metrics.judge_cache`), so a photo is embedded once whatever gallery it is in."""

    MEMORY_LIMIT = 50_000  # images (about 1 KiB each)

    def __init__(self) -> None:
        import dlib

        folder = model_folder()
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._aligner = dlib.shape_predictor(str(folder / ALIGNER_FILE))
        self._recogniser = dlib.face_recognition_model_v1(str(folder / RECOGNISER_FILE))
        self._cache: dict[str, tuple[np.ndarray, bool]] = {}
        identity = (dlib.__version__, MIN_SIDE, CHIP_SIZE, CHIP_PADDING,
                    *((folder / name).stat().st_size for name in (RECOGNISER_FILE, ALIGNER_FILE)))
        self._identity = repr(identity).encode()

    def embed(self, images: np.ndarray) -> FaceEmbeddings:
        """Descriptors of ``images`` ``[N, C, H, W]`` (any value range: each is stretched)."""
        images = np.asarray(images)
        keys = [self._key(image) for image in images]
        found = {key: self._cache[key] for key in keys if key in self._cache}
        folder = judge_cache.cache_folder()
        if folder is not None:
            for key in {key for key in keys if key not in found}:
                stored = judge_cache.load(folder, key)
                if stored is not None and stored[0].shape == (DESCRIPTOR_SIZE,) and stored[1].size == 1:
                    found[key] = (stored[0], bool(stored[1]))  # anything else is embedded again
        missing = {key: index for index, key in enumerate(keys) if key not in found}
        if missing:
            fresh = self._embed(images[list(missing.values())])
            for key, descriptor, detected in zip(missing, fresh.descriptors, fresh.detected):
                found[key] = (descriptor, bool(detected))
                if folder is not None:
                    judge_cache.store(folder, key, descriptor, np.asarray(detected))
        self._remember(found)
        if not keys:
            return FaceEmbeddings(np.zeros((0, DESCRIPTOR_SIZE)), np.zeros(0, dtype=bool))
        return FaceEmbeddings(np.stack([found[key][0] for key in keys]).astype(np.float64),
                              np.array([found[key][1] for key in keys], dtype=bool))

    def _key(self, image: np.ndarray) -> str:
        digest = hashlib.blake2b(self._identity, digest_size=16)
        digest.update(repr(image.shape).encode())
        digest.update(np.ascontiguousarray(image, dtype=np.float32).tobytes())
        return digest.hexdigest()

    def _remember(self, found: dict[str, tuple[np.ndarray, bool]]) -> None:
        self._cache.update(found)
        while len(self._cache) > self.MEMORY_LIMIT:
            self._cache.pop(next(iter(self._cache)))

    def _embed(self, images: np.ndarray) -> FaceEmbeddings:
        chips, detected = [], np.zeros(len(images), dtype=bool)
        for index, image in enumerate(images):
            pixels = to_judge_pixels(np.asarray(image, dtype=np.float64))
            faces = self._detector(pixels, 0)
            if len(faces):
                detected[index] = True
                box = max(faces, key=lambda face: face.area())
            else:
                box = self._dlib.rectangle(0, 0, pixels.shape[1] - 1, pixels.shape[0] - 1)
            chips.append(self._dlib.get_face_chip(pixels, self._aligner(pixels, box), size=CHIP_SIZE,
                                                  padding=CHIP_PADDING))
        descriptors = np.array(self._recogniser.compute_face_descriptor(chips), dtype=np.float64)
        return FaceEmbeddings(descriptors.reshape(len(images), -1), detected)


@cache
def face_judge() -> FaceJudge:
    """The process's judge (its model files are read once)."""
    return FaceJudge()


def centroid_scores(probe: np.ndarray, gallery: np.ndarray, gallery_labels: np.ndarray, n_classes: int) -> np.ndarray:
    """``[T, n_classes]`` scores: minus the distance of each probe descriptor to each person's
    mean gallery descriptor (people without gallery photos score minus infinity)."""
    scores = np.full((len(probe), n_classes), -np.inf)
    for label in np.unique(gallery_labels):
        centroid = gallery[gallery_labels == label].mean(axis=0)
        scores[:, label] = -np.linalg.norm(probe - centroid, axis=1)
    return scores
