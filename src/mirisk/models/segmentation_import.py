"""A hospital's own segmentation network, audited from its file and a manifest.

The manifest (JSON, ``"format": "mirisk-segmentation-manifest/1"``) is what the audit is
pointed at (``mirisk audit --model seg.json``). It names the model file and says what the
file cannot: the input shape and value range, the classes, whether the network outputs
logits or probabilities, where the scans and label maps are and how they are sliced, and
which subjects the network was trained on (a text file of ids, one per line)::

    {"format": "mirisk-segmentation-manifest/1", "model": "unet.onnx",
     "input_shape": [1, 120, 120], "value_range": [0, 1], "classes": ["background", "brain"],
     "outputs": "logits", "images": "scans/dicom", "labels": "scans/labels",
     "groups": "brain", "axis": 2, "slice_index": null, "slices": 1,
     "train_subjects": "train_ids.txt"}

Paths are relative to the manifest. The model file is loaded by the same safe loaders as an
image classifier (TorchScript, ``.pt2``, ONNX, or safetensors with ``"arch":
"module:factory"``; nothing is unpickled) and checked on import: it must map ``[N, C, H,
W]`` in the value range to finite ``[N, classes, H, W]``. The decoder attack needs no
gradients, so an ONNX network is attacked at every output type it can give; a network that
outputs probabilities gives the white-box unit log-probabilities (all its file computes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mirisk.data.mri import BUNDLED, LABEL_GROUPS
from mirisk.errors import MiriskError
from mirisk.models.manifest import is_manifest as is_any_manifest
from mirisk.models.manifest import read_fields, read_ids
from mirisk.models.imported import OUTPUTS, ImportSpec, InputAdapter, load_model_file
from mirisk.models.segmentation import SegmentationTarget

MANIFEST_FORMAT = "mirisk-segmentation-manifest/1"
REQUIRED = ("model", "input_shape", "classes", "images", "train_subjects")
KNOWN = frozenset({"format", *REQUIRED, "arch", "value_range", "outputs", "labels", "groups", "axis", "slice_index",
                   "slices"})


def is_manifest(path: Path) -> bool:
    """Whether ``path`` is a segmentation manifest (a JSON file that says so)."""
    return is_any_manifest(path, MANIFEST_FORMAT)


def _relative(base: Path, value: Any) -> str | None:
    if value is None or str(value) == BUNDLED:
        return None if value is None else BUNDLED
    return str((base / str(value)).resolve())


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest's fields, checked, with paths resolved against its folder."""
    path = Path(path)
    manifest = read_fields(path, MANIFEST_FORMAT, "segmentation", REQUIRED, KNOWN)
    shape, classes = manifest["input_shape"], manifest["classes"]
    if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(n, int) and n > 0 for n in shape)):
        raise MiriskError(f"{path}: input_shape must be [C, H, W] of positive integers, got {shape!r}")
    if not (isinstance(classes, list) and len(classes) >= 2 and all(isinstance(name, str) for name in classes)):
        raise MiriskError(f"{path}: classes must list at least two class names, got {classes!r}")
    groups = manifest.get("groups")
    if groups is not None and (groups not in LABEL_GROUPS or len(LABEL_GROUPS[groups]) != len(classes)):
        raise MiriskError(f"{path}: groups {groups!r} must be one of {', '.join(LABEL_GROUPS)} with as many classes "
                          f"as the manifest names ({len(classes)})")
    if manifest.get("outputs", "logits") not in OUTPUTS:
        raise MiriskError(f"{path}: outputs must be one of {', '.join(OUTPUTS)}, got {manifest.get('outputs')!r}")
    base = path.parent
    return {**manifest, "model": _relative(base, manifest["model"]), "images": _relative(base, manifest["images"]),
            "labels": _relative(base, manifest.get("labels")),
            "train_subjects": read_ids(Path(_relative(base, manifest["train_subjects"])), "subject")}


def load_manifest_segmenter(path: str | Path) -> SegmentationTarget:
    """The network the manifest at ``path`` names, loaded safely and checked to segment."""
    manifest = read_manifest(path)
    value_range = tuple(float(value) for value in manifest.get("value_range", (0.0, 1.0)))
    spec = ImportSpec(input_shape=tuple(manifest["input_shape"]), value_range=value_range,  # type: ignore[arg-type]
                      outputs=manifest.get("outputs", "logits"), arch=manifest.get("arch"))
    loaded = load_model_file(manifest["model"], spec)
    adapter = InputAdapter(loaded.module, None, None, flatten=False, outputs=loaded.outputs,
                           fixed_mode=loaded.format == "export").eval().requires_grad_(False)
    channels, height, width = spec.input_shape  # type: ignore[misc]
    n_classes = len(manifest["classes"])
    try:
        with torch.no_grad():
            probe = adapter(torch.full((2, channels, height, width), sum(value_range) / 2))
    except Exception as error:  # the user's network may raise anything on a wrong shape
        raise MiriskError(f"{manifest['model']} does not run on inputs of shape {manifest['input_shape']}: "
                          f"{str(error).splitlines()[0]}") from None
    if tuple(probe.shape) != (2, n_classes, height, width):
        raise MiriskError(f"{manifest['model']} returns outputs of shape {list(probe.shape[1:])} per scan; a "
                          f"segmenter of {n_classes} classes returns [{n_classes}, {height}, {width}]")
    if not torch.isfinite(probe).all():
        raise MiriskError(f"{manifest['model']} returns non-finite outputs (NaN or inf) on a plain input")
    data = {"images": manifest["images"], "labels": manifest["labels"], "slices": int(manifest.get("slices", 1)),
            "groups": manifest.get("groups") or "brain", "axis": int(manifest.get("axis", 2)),
            "centre": manifest.get("slice_index"), "train_subjects": manifest["train_subjects"]}
    return SegmentationTarget(adapter, f"imported-{loaded.format}", tuple(manifest["classes"]), data=data,
                              input_channels=channels, outputs=loaded.outputs,
                              provenance={**loaded.provenance, "manifest": Path(path).name})
