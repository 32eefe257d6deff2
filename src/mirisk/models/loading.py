"""One entry point for image targets: a mirisk model folder, or a file trained elsewhere."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from mirisk.data.images import ImageDataset
from mirisk.data.split import SubjectSplit, split_per_subject
from mirisk.errors import MiriskError
from mirisk.models.imported import ImportSpec, import_model
from mirisk.models.store import load_target
from mirisk.models.target import TargetModel


def load_image_target(path: str | Path, spec: ImportSpec | None = None,
                      dataset: ImageDataset | None = None) -> TargetModel:
    """A folder is a mirisk model; a file is imported under ``spec``. Without class names,
    an imported model takes the data's people (folder names) when their count fits."""
    path = Path(path)
    if path.is_dir():
        if spec is not None and spec != ImportSpec():
            raise MiriskError(f"{path} is a mirisk model folder; --input-shape, --classes and the other import "
                              "options are for model files")
        return load_target(path)
    spec = spec or ImportSpec()
    if spec.classes is None and dataset is not None:
        target = import_model(path, spec)
        if target.n_classes == dataset.n_classes:
            return replace(target, class_names=dataset.class_names)
        return target
    return import_model(path, spec)


def target_split(target: TargetModel, dataset: ImageDataset) -> SubjectSplit:
    """Recover the target's training split on ``dataset``, refusing data that do not match."""
    if tuple(dataset.input_shape) != tuple(target.input_shape):
        raise MiriskError(f"the data's images are {dataset.input_shape}; the model expects {target.input_shape}")
    if tuple(dataset.class_names) != tuple(target.class_names):
        raise MiriskError("the data's people (class folders) differ from the classes the model was trained on")
    if target.data.get("split") == "unknown":
        # An imported model: which photos trained it is not known, so every photo serves as
        # both the evaluator's training set and the gallery (see README, "Audit your own model").
        everyone = np.arange(len(dataset.images))
        return SubjectSplit(train=everyone, held_out=everyone)
    recorded = target.data.get("fingerprint")
    if recorded and recorded != dataset.fingerprint():
        raise MiriskError(
            f"these data are not the ones the model was trained on (fingerprint {dataset.fingerprint()} "
            f"!= {recorded}); pass the training data folder with --data"
        )
    return split_per_subject(
        dataset, n_train=int(target.data.get("n_train_per_subject", 7)), seed=int(target.data.get("split_seed", 0))
    )
