"""Shared fixtures: the real AT&T faces and targets trained on them once per session."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import pytest
from filelock import FileLock
from PIL import Image

from mirisk.data import ImageDataset, load_faces
from mirisk.data.mri import BUNDLED as BUNDLED_MRI
from mirisk.data.mri import load_mri
from mirisk.models.target import TargetModel
from mirisk.models.segmentation_store import save_segmenter
from mirisk.models.store import load_target, save_target
from mirisk.pipelines.faces import train_face_target
from mirisk.pipelines.federated import downscaled
from mirisk.pipelines.mri import SegmenterSettings, train_private_segmenter
from mirisk.metrics.judge_cache import CACHE_VARIABLE
from tests.tabular_files import dosing_patients_folder
from tests.servers import RayCluster, Server, start_ray_cluster, start_server

SHARED_FACES = Path(__file__).resolve().parents[2] / "shared/data/att_faces"


@pytest.fixture(scope="session")
def faces() -> ImageDataset:
    return load_faces(None)


class TrainedOnDemand(Mapping[str, TargetModel]):
    """The three face-recogniser families with their default settings, each trained the first
    time a test asks for it (most ask only for the softmax). The MLP and the CNN (67 s and
    24 s to train) are trained once per run: the first worker to ask saves them, under a file
    lock, where the other loads them."""

    FAMILIES = ("softmax", "mlp", "cnn")
    SHARED = ("mlp", "cnn")

    def __init__(self, faces: ImageDataset, shared: Path) -> None:
        self._faces = faces
        self._shared = shared
        self._trained: dict[str, TargetModel] = {}

    def __getitem__(self, architecture: str) -> TargetModel:
        if architecture not in self.FAMILIES:
            raise KeyError(architecture)
        if architecture not in self._trained:
            self._trained[architecture] = (self._trained_once(architecture) if architecture in self.SHARED
                                           else train_face_target(architecture, self._faces))
        return self._trained[architecture]

    def _trained_once(self, architecture: str) -> TargetModel:
        folder = self._shared / architecture
        self._shared.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{folder}.lock"):
            if not (folder / "target.json").is_file():
                save_target(train_face_target(architecture, self._faces), folder)
        return load_target(folder)

    def __iter__(self) -> Iterator[str]:
        return iter(self.FAMILIES)

    def __len__(self) -> int:
        return len(self.FAMILIES)


@pytest.fixture(scope="session")
def targets(faces: ImageDataset, tmp_path_factory) -> Mapping[str, TargetModel]:
    return TrainedOnDemand(faces, run_folder(tmp_path_factory) / "targets")


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


@pytest.fixture(scope="session")
def hospital_tabular(tmp_path_factory, iwpc_split) -> Path:
    """A hospital's dosing model in skops and ONNX, its training ids and its patient table."""
    return dosing_patients_folder(tmp_path_factory.mktemp("hospital"), iwpc_split)


@pytest.fixture(scope="session")
def small_faces(faces: ImageDataset, tmp_path_factory) -> ImageDataset:
    """The AT&T faces at half size (56x46), written as a PNG folder and loaded from it."""
    root = tmp_path_factory.mktemp("small_faces")
    pooled = downscaled(faces, 2)
    for index, (image, label) in enumerate(zip(pooled.images, pooled.labels)):
        folder = root / faces.class_names[label]
        folder.mkdir(exist_ok=True)
        Image.fromarray(np.round(image[0] * 255).astype(np.uint8)).save(folder / f"{index}.png")
    return load_faces(root)


@pytest.fixture(scope="session")
def served_model(small_faces: ImageDataset, tmp_path_factory) -> Path:
    """A softmax face recogniser on the half-size faces, saved as a mirisk model folder."""
    return save_target(train_face_target("softmax", small_faces), tmp_path_factory.mktemp("served") / "model")


@pytest.fixture(scope="session")
def segmenter_dir(tmp_path_factory) -> Path:
    """A U-Net trained briefly on 8 bundled IXI subjects, saved as a mirisk segmenter folder."""
    source = {"images": BUNDLED_MRI, "labels": None, "slices": 1, "groups": "tissue", "axis": 2, "centre": None}
    target = train_private_segmenter(load_mri(**source), source, 8, "unet", SegmenterSettings(epochs=30))
    return save_segmenter(target, tmp_path_factory.mktemp("segmenter") / "model")


@pytest.fixture(scope="module")
def server(served_model: Path, tmp_path_factory) -> Iterator[Server]:
    """One gateway for a test module: label policy by default, the detector alerting."""
    running = start_server(served_model, tmp_path_factory.mktemp("gateway") / "gateway.db",
                           "--max-batch", "32", "--max-body-mb", "1", "--detector", "alert")
    yield running
    running.stop()


def pytest_configure(config: pytest.Config) -> None:
    """Ray's token authentication on, with a token of this test session's own, before
    anything imports Ray: the test cluster's nodes and this process then agree, whatever
    token an earlier `ray.init()` left in ~/.ray. Under pytest-xdist (`-n 2`, one worker per
    core) each worker runs torch on one thread, so the two never oversubscribe the cores."""
    import secrets

    import torch

    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        torch.set_num_threads(1)


def run_folder(tmp_path_factory) -> Path:
    """The temporary folder of the whole run, shared by the xdist workers."""
    root = tmp_path_factory.getbasetemp()
    return root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root


@pytest.fixture(scope="session", autouse=True)
def shared_judge_cache(tmp_path_factory) -> Path:
    """One on-disk cache of the face judge's embeddings for the whole run, shared by both
    xdist workers, the CLI's subprocesses and the Ray nodes (which inherit the variable):
    the same gallery is embedded once per run, not once per process."""
    folder = run_folder(tmp_path_factory) / "judge-cache"
    os.environ[CACHE_VARIABLE] = str(folder)
    return folder


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    """A head and a worker node (one CPU each) on 127.0.0.1, stopped at the end of the session."""
    import ray

    cluster = start_ray_cluster(Path("/tmp") / f"mirisk-ray-{os.getpid()}")
    yield cluster
    ray.shutdown()
    cluster.stop()
