"""Shared fixtures: the real AT&T faces and targets trained on them once per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mirisk.data import ImageDataset, load_faces
from mirisk.models.target import TargetModel
from mirisk.pipelines.faces import train_face_target

SHARED_FACES = Path(__file__).resolve().parents[2] / "shared/data/att_faces"


@pytest.fixture(scope="session")
def faces() -> ImageDataset:
    return load_faces(None)


@pytest.fixture(scope="session")
def targets(faces: ImageDataset) -> dict[str, TargetModel]:
    """The three face-recogniser families, trained with their default settings."""
    return {architecture: train_face_target(architecture, faces) for architecture in ("softmax", "mlp", "cnn")}


def write_face_folder(root: Path, faces: ImageDataset, people: int = 3, per_person: int = 4, suffix: str = ".pgm") -> Path:
    """Write real faces as an image folder (one sub-folder per person)."""
    for label in range(people):
        folder = root / faces.class_names[label]
        folder.mkdir(parents=True)
        for i, image in enumerate(faces.images[faces.labels == label][:per_person]):
            Image.fromarray(np.round(image[0] * 255).astype(np.uint8)).save(folder / f"{i}{suffix}")
    return root


@pytest.fixture(scope="session")
def iwpc_split():
    from mirisk.data.iwpc import load_iwpc, split_cohort

    return split_cohort(load_iwpc(None))


@pytest.fixture(scope="session")
def iwpc_linear(iwpc_split):
    """The IWPC-form linear dosing model on the training patients of the seed-0 split."""
    from mirisk.pipelines.iwpc import train_iwpc_target

    return train_iwpc_target("linear", split=iwpc_split)
