"""Save and load targets as safetensors weights + JSON metadata. Nothing is ever unpickled:
a pickle-based checkpoint (.pt/.pth/.pkl/.ckpt, or any file that is one) is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import Tensor

from mirisk.artifacts import prepare_output_dir, read_json, write_bytes, write_json
from mirisk.errors import MiriskError
from mirisk.models.architectures import build_model
from mirisk.models.target import TargetModel

FORMAT = "mirisk-target/1"
WEIGHTS = "model.safetensors"
METADATA = "target.json"
PICKLE_SUFFIXES = frozenset({".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin", ".joblib"})
SAFE_FORMATS = "a mirisk model folder (model.safetensors + target.json)"


def save_target(target: TargetModel, directory: str | Path, force: bool = False) -> Path:
    """Write ``directory/model.safetensors`` and ``directory/target.json`` (owner-only)."""
    directory = prepare_output_dir(directory, force=force)
    tensors = {name: value.detach().contiguous() for name, value in target.module.state_dict().items()}
    write_bytes(directory / WEIGHTS, save(tensors, metadata={"format": FORMAT}))
    write_json(directory / METADATA, {"format": FORMAT, **target.metadata()})
    return directory


def _refuse_pickle(path: Path) -> None:
    with path.open("rb") as handle:
        head = handle.read(4)
    if path.suffix.lower() in PICKLE_SUFFIXES or head[:1] == b"\x80" or head == b"PK\x03\x04":
        raise MiriskError(
            f"refusing to load {path}: it is (or may be) a pickle-based checkpoint, and unpickling "
            f"can run arbitrary code. Supply {SAFE_FORMATS}"
        )


def read_model_folder(path: str | Path, expected_format: str = FORMAT) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """The metadata and weights of a mirisk model folder of ``expected_format``, never
    unpickling anything."""
    path = Path(path)
    if not path.exists():
        raise MiriskError(f"model not found: {path}")
    if path.is_file():
        _refuse_pickle(path)
        raise MiriskError(f"{path} is a file; supply {SAFE_FORMATS}")
    weights, metadata_path = path / WEIGHTS, path / METADATA
    for candidate in sorted(path.iterdir()):
        if candidate.suffix.lower() in PICKLE_SUFFIXES and not weights.exists():
            _refuse_pickle(candidate)
    if not weights.exists() or not metadata_path.exists():
        raise MiriskError(f"{path} is not a mirisk model folder: expected {WEIGHTS} and {METADATA}")
    metadata = read_json(metadata_path)
    if not isinstance(metadata, dict) or metadata.get("format") != expected_format:
        raise MiriskError(f"{metadata_path} is not a {expected_format} metadata file")
    try:
        return metadata, load_file(weights)
    except (SafetensorError, OSError) as error:
        raise MiriskError(f"{weights} is not a readable safetensors file: {error}") from None


def load_target(path: str | Path) -> TargetModel:
    """Load a model folder written by :func:`save_target`, never unpickling anything."""
    metadata, state = read_model_folder(path)
    metadata_path, weights = Path(path) / METADATA, Path(path) / WEIGHTS
    try:
        target = TargetModel(
            module=build_model(
                metadata["architecture"], metadata["input_shape"], len(metadata["class_names"]),
                **metadata.get("architecture_params", {}),
            ),
            architecture=metadata["architecture"],
            input_shape=tuple(metadata["input_shape"]),
            class_names=tuple(metadata["class_names"]),
            value_range=tuple(metadata.get("value_range", (0.0, 1.0))),
            architecture_params=metadata.get("architecture_params", {}),
            training=metadata.get("training", {}),
            metrics=metadata.get("metrics", {}),
            data=metadata.get("data", {}),
        )
    except KeyError as error:
        raise MiriskError(f"{metadata_path} lacks the field {error}") from None
    try:
        target.module.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first = str(error).splitlines()[0]
        raise MiriskError(f"{weights} does not match the architecture in {METADATA}: {first}") from None
    target.module.eval()
    return target
