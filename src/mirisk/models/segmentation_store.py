"""Save and load segmenters as a mirisk model folder (safetensors weights + JSON metadata),
so a segmentation model can be audited like any other; nothing is ever unpickled."""

from __future__ import annotations

from pathlib import Path

from safetensors.torch import save

from mirisk.artifacts import prepare_output_dir, write_bytes, write_json
from mirisk.errors import MiriskError
from mirisk.models.segmentation import SegmentationTarget, build_segmenter
from mirisk.models.store import METADATA, WEIGHTS, read_model_folder

FORMAT = "mirisk-segmenter/1"


def save_segmenter(target: SegmentationTarget, directory: str | Path, force: bool = False) -> Path:
    """Write ``directory/model.safetensors`` and ``directory/target.json`` (owner-only)."""
    directory = prepare_output_dir(directory, force=force)
    tensors = {name: value.detach().contiguous() for name, value in target.module.state_dict().items()}
    write_bytes(directory / WEIGHTS, save(tensors, metadata={"format": FORMAT}))
    write_json(directory / METADATA, {
        "format": FORMAT, "architecture": target.architecture, "in_channels": target.in_channels,
        "class_names": list(target.class_names), "training": target.training, "metrics": target.metrics,
        "data": target.data,
    })
    return directory


def load_segmenter(path: str | Path) -> SegmentationTarget:
    """Load a folder written by :func:`save_segmenter`."""
    metadata, state = read_model_folder(path, FORMAT)
    try:
        training = metadata["training"]
        module = build_segmenter(metadata["architecture"], int(metadata["in_channels"]), len(metadata["class_names"]),
                                 int(training["width"]), int(training["depth"]), float(training.get("dropout", 0.0)))
        target = SegmentationTarget(module, metadata["architecture"], tuple(metadata["class_names"]), training,
                                    metadata.get("metrics", {}), metadata.get("data", {}))
    except KeyError as error:
        raise MiriskError(f"{Path(path) / METADATA} lacks the field {error}") from None
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise MiriskError(f"{Path(path) / WEIGHTS} does not match the architecture in {METADATA}: "
                          f"{str(error).splitlines()[0]}") from None
    module.eval()
    return target
