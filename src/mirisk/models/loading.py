"""One entry point for image targets: a mirisk model folder, or a file trained elsewhere."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from mirisk.data.images import ImageDataset
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
